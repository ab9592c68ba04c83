//! [`Feed`]: what a shared store's background listener and its checks share
//! (whether invalidations arrive, and the cache they keep fresh), and
//! [`Backoff`], the listener's reconnection delays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Weak;
use std::time::{Duration, Instant};

use super::cache::{CacheTicket, Invalidation, StateCache};
use super::RevocationState;
use crate::session::SessionId;

/// The invalidation feed of a shared store, for store implementations: the
/// PostgreSQL (`LISTEN`) and Redis (pub/sub) stores keep one between their
/// checks and the background task that listens.
///
/// The listener reports what happens to its connection ([`Feed::connected`],
/// [`Feed::message`], [`Feed::lost`]); the checks ask the cache through
/// [`Feed::lookup`] and [`Feed::remember`], which use it only while the feed
/// is live: while it is down, invalidations would be missed, so every check
/// reads the store.
///
/// ```
/// use std::time::Duration;
/// use sealed_session::{Feed, RevocationState, Session};
///
/// let feed = Feed::new(Duration::from_secs(1));
/// let session = Session::new(()).id();
/// let state = RevocationState::default();
/// // Not live: nothing is cached or answered.
/// let ticket = feed.lookup(None, &session, 0).unwrap_err();
/// feed.remember(ticket, None, &session, &state);
/// assert!(feed.lookup(None, &session, 1).is_err());
///
/// feed.connected();
/// let ticket = feed.lookup(None, &session, 10).unwrap_err();
/// feed.remember(ticket, None, &session, &state);
/// assert_eq!(feed.lookup(None, &session, 11).ok(), Some(state));
/// feed.message(Some(&format!("session:{}", session.to_hex())));
/// assert!(feed.lookup(None, &session, 12).is_err(), "invalidated");
/// ```
#[derive(Debug)]
pub struct Feed {
    cache: StateCache,
    live: AtomicBool,
    /// Whether the cache was kept when the feed was lost, for stale
    /// answers: the store's answers meanwhile update it.
    kept: AtomicBool,
    /// Whether it was ever connected: a later connection is a reconnection.
    was_connected: AtomicBool,
}

/// A listener's connection, as [`Feed::connect`] reported it: dropped, it
/// reports the connection lost, keeping the cache if asked to.
#[derive(Debug)]
#[must_use = "the feed is reported lost as soon as this is dropped"]
pub struct FeedConnection {
    feed: Weak<Feed>,
    keep_cache: bool,
}

impl Drop for FeedConnection {
    fn drop(&mut self) {
        if let Some(feed) = self.feed.upgrade() {
            feed.lost(self.keep_cache);
        }
    }
}

impl Feed {
    /// A feed that is not yet live, with a cache of answers that live at
    /// most `cache_ttl` (see [`StateCache::new`]).
    #[must_use]
    pub fn new(cache_ttl: Duration) -> Self {
        Self {
            cache: StateCache::new(cache_ttl),
            live: AtomicBool::new(false),
            kept: AtomicBool::new(false),
            was_connected: AtomicBool::new(false),
        }
    }

    /// The cache, for what the store does to it itself (its own
    /// revocations invalidate it before they return).
    #[must_use]
    pub fn cache(&self) -> &StateCache {
        &self.cache
    }

    /// Whether invalidations arrive, and so the cache is in use.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// The listener is (again) connected: what was cached may have missed
    /// invalidations sent while it was down, so the cache starts empty, and
    /// is used from now on.
    pub fn connected(&self) {
        self.cache.clear();
        self.live.store(true, Ordering::SeqCst);
        let again = self.was_connected.swap(true, Ordering::SeqCst);
        crate::metrics::feed_up(again);
    }

    /// An invalidation arrived: `payload` as [`Invalidation::parse`] reads
    /// it; `None` (a message that could not be read, or a reconnection the
    /// listener noticed) empties the cache.
    pub fn message(&self, payload: Option<&str>) {
        match payload {
            Some(payload) => self.cache.apply(&Invalidation::parse(payload)),
            None => self.cache.clear(),
        }
    }

    /// [`Feed::connected`] for a listener that holds the feed weakly (so
    /// that it ends with its store), with a guard that reports the
    /// connection lost ([`Feed::lost`]) when dropped: however the listener
    /// ends (its connection closed, its task dropped with a runtime that
    /// shut down, a panic), no feed stays live that no one listens to.
    /// `None` if the store is gone.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use sealed_session::Feed;
    ///
    /// let feed = Arc::new(Feed::new(Duration::from_secs(1)));
    /// let connection = Feed::connect(&Arc::downgrade(&feed), false).unwrap();
    /// assert!(feed.is_live());
    /// drop(connection);
    /// assert!(!feed.is_live());
    /// ```
    pub fn connect(feed: &Weak<Self>, keep_cache: bool) -> Option<FeedConnection> {
        feed.upgrade()?.connected();
        Some(FeedConnection { feed: feed.clone(), keep_cache })
    }

    /// The listener lost its connection: the cache is not used until it is
    /// back, and is emptied, unless `keep_cache` (for answers to a store
    /// that cannot be reached, by explicit opt-in).
    pub fn lost(&self, keep_cache: bool) {
        self.live.store(false, Ordering::SeqCst);
        self.kept.store(keep_cache, Ordering::SeqCst);
        crate::metrics::feed_down();
        if !keep_cache {
            self.cache.clear();
        }
    }

    /// The cached answer for a check at `now_ms`, while the feed is live;
    /// otherwise the ticket to take the store's answer with
    /// ([`Feed::remember`]), taken before the read so that an invalidation
    /// that lands while it runs keeps that answer out of the cache.
    ///
    /// # Errors
    /// The [`CacheTicket`] when nothing cached may answer.
    pub fn lookup(
        &self,
        user_id: Option<&str>,
        session: &SessionId,
        now_ms: i64,
    ) -> Result<RevocationState, CacheTicket> {
        if !self.is_live() {
            crate::metrics::cache_lookup("bypass", None);
            return Err(self.cache.ticket(now_ms));
        }
        self.cache.get(user_id, session, now_ms).ok_or_else(|| self.cache.ticket(now_ms))
    }

    /// Caches the store's answer read with `ticket`, if the feed is live
    /// (and nothing was invalidated since the ticket was taken), or if the
    /// cache was kept for stale answers when it was lost: a revocation
    /// read meanwhile must replace the older answer kept, or a store that
    /// then cannot be reached would be answered for from before it.
    pub fn remember(
        &self,
        ticket: CacheTicket,
        user_id: Option<&str>,
        session: &SessionId,
        state: &RevocationState,
    ) {
        if self.is_live() {
            self.cache.insert(ticket, user_id, session, state);
        } else if self.kept.load(Ordering::SeqCst) {
            self.cache.insert_with(ticket, user_id, session, state, true);
        }
    }

    /// Waits until the feed is live, for at most `limit`, on any executor.
    /// Returns whether it is.
    pub async fn wait_until_live(&self, limit: Duration) -> bool {
        // No deadline for a limit past what an `Instant` holds.
        let deadline = std::time::Instant::now().checked_add(limit);
        while !self.is_live() {
            if deadline.is_some_and(|deadline| std::time::Instant::now() >= deadline) {
                return false;
            }
            crate::timer::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// The delays between a listener's attempts to (re)connect: 50 ms, doubled
/// after each failure up to 1 s; [`Backoff::reset`] after a success.
///
/// ```
/// use std::time::Duration;
/// use sealed_session::Backoff;
///
/// let mut backoff = Backoff::default();
/// let delays: Vec<u64> = (0..7).map(|_| backoff.next_delay().as_millis() as u64).collect();
/// assert_eq!(delays, [50, 100, 200, 400, 800, 1000, 1000]);
/// backoff.reset();
/// assert_eq!(backoff.next_delay(), Duration::from_millis(50));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    next: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MOST: Duration = Duration::from_secs(1);

    /// The delay before the next attempt; the one after it doubles.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(Self::MOST);
        delay
    }

    /// After a success: the next failure waits the shortest delay again.
    pub fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self { next: Self::FIRST }
    }
}

/// Whether an invalidation subscription (Redis pub/sub, PostgreSQL
/// `LISTEN`) still delivers, for a connection that can stop delivering
/// without closing (a firewall or NAT that forgot it, a stalled server
/// process). After [`Heartbeat::QUIET`] without a message the listener
/// sends one on its own channel ([`Invalidation::of_no_session`]); if
/// nothing arrives within [`Heartbeat::WAIT`] (or longer, for a slow
/// store) the subscription is taken for lost.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sealed_session::{Heartbeat, Quiet};
///
/// let start = Instant::now();
/// let mut heartbeat = Heartbeat::new(start, Duration::ZERO);
/// assert_eq!(heartbeat.quiet(start + Duration::from_secs(4)), Quiet::Wait);
/// assert_eq!(heartbeat.quiet(start + Duration::from_secs(5)), Quiet::Ping);
/// heartbeat.pinged(start + Duration::from_secs(5));
/// assert_eq!(heartbeat.quiet(start + Duration::from_secs(7)), Quiet::Wait);
/// assert_eq!(heartbeat.quiet(start + Duration::from_secs(8)), Quiet::Lost);
/// heartbeat.heard(start + Duration::from_secs(8));
/// assert_eq!(heartbeat.quiet(start + Duration::from_secs(9)), Quiet::Wait);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Heartbeat {
    heard: Instant,
    pinged: Option<Instant>,
    wait: Duration,
}

/// What a quiet subscription's listener does next ([`Heartbeat::quiet`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quiet {
    /// Nothing yet.
    Wait,
    /// Send a ping, and say so with [`Heartbeat::pinged`] whether it went
    /// or not (a store that cannot take one is no reason to trust a silent
    /// subscription).
    Ping,
    /// The ping did not come back: the subscription delivers nothing.
    Lost,
}

impl Heartbeat {
    /// How long a subscription may be quiet before it is pinged.
    pub const QUIET: Duration = Duration::from_secs(5);
    /// How long a ping may take to come back, at least.
    pub const WAIT: Duration = Duration::from_secs(3);
    /// How long a ping may take to come back, at most, however slow the
    /// store's calls may be: a silent subscription is never trusted longer.
    pub const MAX_WAIT: Duration = Duration::from_secs(60);

    /// A subscription that came up at `now`, on a store whose calls may
    /// take `timeout`: a ping may take four of them, if that is longer
    /// than [`Heartbeat::WAIT`], up to [`Heartbeat::MAX_WAIT`].
    #[must_use]
    pub fn new(now: Instant, timeout: Duration) -> Self {
        Self { heard: now, pinged: None, wait: Self::ping_wait(timeout) }
    }

    /// How long a ping may take to come back on a store whose calls may
    /// take `timeout` (see [`Heartbeat::new`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// use sealed_session::Heartbeat;
    /// assert_eq!(Heartbeat::ping_wait(Duration::from_millis(250)), Heartbeat::WAIT);
    /// assert_eq!(Heartbeat::ping_wait(Duration::from_secs(2)), Duration::from_secs(8));
    /// assert_eq!(Heartbeat::ping_wait(Duration::MAX), Heartbeat::MAX_WAIT);
    /// ```
    #[must_use]
    pub fn ping_wait(timeout: Duration) -> Duration {
        Self::WAIT.max(timeout.saturating_mul(4)).min(Self::MAX_WAIT)
    }

    /// A message arrived at `now` (anyone's, a ping's or a revocation's).
    pub fn heard(&mut self, now: Instant) {
        (self.heard, self.pinged) = (now, None);
    }

    /// A ping was sent at `now`.
    pub fn pinged(&mut self, now: Instant) {
        self.pinged = Some(now);
    }

    /// What to do at `now`, with no message since the last.
    #[must_use]
    pub fn quiet(&self, now: Instant) -> Quiet {
        match self.pinged {
            Some(at) if now.saturating_duration_since(at) >= self.wait => Quiet::Lost,
            Some(_) => Quiet::Wait,
            None if now.saturating_duration_since(self.heard) >= Self::QUIET => Quiet::Ping,
            None => Quiet::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::Session;

    fn state(epoch: u64) -> RevocationState {
        RevocationState { user_epoch: epoch, session_revoked: false, revoked_through: 0 }
    }

    /// Caches `state` for alice's `session` at `now_ms`; whether a lookup
    /// right after finds it.
    fn cached(feed: &Feed, session: &SessionId, now_ms: i64) -> bool {
        if let Err(ticket) = feed.lookup(Some("alice"), session, now_ms) {
            feed.remember(ticket, Some("alice"), session, &state(1));
        }
        feed.lookup(Some("alice"), session, now_ms + 1) == Ok(state(1))
    }

    /// Caches `state` for `user` (a session of their own) read at `now_ms`
    /// while the feed is down; whether it was kept.
    fn cached_as(feed: &Feed, user: &str, now_ms: i64, state: &RevocationState) -> bool {
        let session = Session::new(()).id();
        let ticket = feed.lookup(Some(user), &session, now_ms).unwrap_err();
        feed.remember(ticket, Some(user), &session, state);
        feed.cache().get_stale(Some(user), &session, now_ms + 1, Duration::from_secs(30)) == Some(*state)
    }

    #[test]
    fn the_cache_is_used_only_while_the_feed_is_live() {
        let feed = Feed::new(Duration::from_secs(1));
        let session = Session::new(()).id();
        assert!(!feed.is_live());
        assert!(!cached(&feed, &session, 0), "not live: nothing is cached");
        feed.connected();
        assert!(feed.is_live());
        assert!(cached(&feed, &session, 10));
        // Lost: not used, and emptied...
        feed.lost(false);
        assert!(!feed.is_live());
        assert!(feed.lookup(Some("alice"), &session, 12).is_err());
        assert_eq!(feed.cache().get(Some("alice"), &session, 12), None, "emptied");
        // ...or kept for stale answers, but still not used.
        feed.connected();
        assert!(cached(&feed, &session, 20));
        feed.lost(true);
        assert!(feed.lookup(Some("alice"), &session, 22).is_err());
        assert_eq!(feed.cache().get(Some("alice"), &session, 22), Some(state(1)), "kept");
        // Connecting again starts from an empty cache.
        feed.connected();
        assert!(feed.lookup(Some("alice"), &session, 23).is_err());
    }

    /// While the feed is down with its cache kept for stale answers, what
    /// the store answers replaces what was kept: a revocation read then
    /// is not undone by a stale answer once the store cannot be reached.
    #[test]
    fn answers_read_while_the_feed_is_down_replace_those_kept_for_stale_answers() {
        let feed = Feed::new(Duration::from_secs(1));
        let session = Session::new(()).id();
        let stale = |feed: &Feed, now_ms| {
            feed.cache().get_stale(Some("alice"), &session, now_ms, Duration::from_secs(30))
        };
        feed.connected();
        assert!(cached(&feed, &session, 0));
        feed.lost(true);
        let ticket = feed.lookup(Some("alice"), &session, 100).unwrap_err();
        feed.remember(ticket, Some("alice"), &session, &state(2));
        assert_eq!(stale(&feed, 200), Some(state(2)), "the later answer, not the one kept");
        assert!(feed.lookup(Some("alice"), &session, 201).is_err(), "and still not used while down");
        // An older answer does not replace a later one, nor does one read
        // earlier, however much earlier (no invalidation tells meanwhile).
        let ticket = feed.lookup(Some("alice"), &session, 300).unwrap_err();
        feed.remember(ticket, Some("alice"), &session, &state(1));
        assert_eq!(stale(&feed, 400), Some(state(2)));
        let slow = feed.lookup(Some("alice"), &session, 1_000).unwrap_err();
        let quick = feed.lookup(Some("alice"), &session, 5_000).unwrap_err();
        let denied = RevocationState { session_revoked: true, ..state(2) };
        feed.remember(quick, Some("alice"), &session, &denied);
        feed.remember(slow, Some("alice"), &session, &state(2));
        assert_eq!(stale(&feed, 6_000), Some(denied), "a read begun 4 s earlier undid a logout");
        // Another user's later read (the same cutoff) holds back no answer
        // of bob's; a later read that saw another cutoff holds back every
        // older one, and drops what was kept from before it.
        let bob = Session::new(()).id();
        let slow = feed.lookup(Some("bob"), &bob, 6_000).unwrap_err();
        assert!(cached_as(&feed, "carol", 7_000, &state(1)));
        feed.remember(slow, Some("bob"), &bob, &state(4));
        let stale_of = |feed: &Feed, user, id, now_ms| {
            feed.cache().get_stale(Some(user), id, now_ms, Duration::from_secs(30))
        };
        assert_eq!(stale_of(&feed, "bob", &bob, 7_500), Some(state(4)), "held back by carol's read");
        let slow = feed.lookup(Some("bob"), &bob, 8_000).unwrap_err();
        let cutoff = RevocationState { revoked_through: 7, ..state(1) };
        assert!(cached_as(&feed, "carol", 9_000, &cutoff));
        feed.remember(slow, Some("bob"), &bob, &state(4));
        assert_eq!(stale_of(&feed, "bob", &bob, 9_500), None, "an answer from before the new cutoff");
        // Refused for a later read of bob's other session: what was kept of
        // this session from before it goes too (it saw the logout).
        let kept = |feed: &Feed, id, now_ms, state: &RevocationState| {
            let ticket = feed.lookup(Some("bob"), id, now_ms).unwrap_err();
            feed.remember(ticket, Some("bob"), id, state);
        };
        let (this, other) = (Session::new(()).id(), Session::new(()).id());
        kept(&feed, &this, 10_000, &cutoff);
        let slow = feed.lookup(Some("bob"), &this, 10_500).unwrap_err();
        kept(&feed, &other, 11_000, &RevocationState { user_epoch: 2, ..cutoff });
        feed.remember(slow, Some("bob"), &this, &RevocationState { session_revoked: true, ..cutoff });
        assert_eq!(stale_of(&feed, "bob", &this, 11_500), None, "the logout read at 10.5 s was undone");
        // Not kept: nothing is cached while down.
        feed.lost(false);
        let ticket = feed.lookup(Some("alice"), &session, 500).unwrap_err();
        feed.remember(ticket, Some("alice"), &session, &state(3));
        assert_eq!(stale(&feed, 600), None);
    }

    #[test]
    fn messages_invalidate_what_they_name_and_an_unreadable_one_everything() {
        let feed = Feed::new(Duration::from_secs(1));
        feed.connected();
        let (one, two) = (Session::new(()).id(), Session::new(()).id());
        assert!(cached(&feed, &one, 0) && cached(&feed, &two, 0));
        feed.message(Some(&format!("session:{}", one.to_hex())));
        assert!(feed.lookup(Some("alice"), &one, 2).is_err());
        assert_eq!(feed.lookup(Some("alice"), &two, 2), Ok(state(1)), "another session stays");
        feed.message(Some("user:alice"));
        assert!(feed.lookup(Some("alice"), &two, 2).is_err(), "the user's epoch goes");
        assert!(cached(&feed, &two, 3));
        feed.message(None);
        assert!(feed.lookup(Some("alice"), &two, 5).is_err(), "an unreadable message empties the cache");
    }

    #[test]
    fn waiting_for_the_feed_ends_when_it_is_live_or_the_limit_passes() {
        let feed = Feed::new(Duration::from_secs(1));
        let started = std::time::Instant::now();
        assert!(!pollster::block_on(feed.wait_until_live(Duration::from_millis(30))));
        assert!(started.elapsed() >= Duration::from_millis(30));
        feed.connected();
        assert!(pollster::block_on(feed.wait_until_live(Duration::ZERO)));
        // "No limit" is no panic (an `Instant` cannot hold it).
        assert!(pollster::block_on(feed.wait_until_live(Duration::MAX)));
    }

    #[test]
    fn a_quiet_subscription_is_pinged_and_lost_only_if_the_ping_is_not_heard() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut heartbeat = Heartbeat::new(start, Duration::from_millis(250));
        assert_eq!(heartbeat.quiet(at(4)), Quiet::Wait);
        assert_eq!(heartbeat.quiet(at(5)), Quiet::Ping);
        heartbeat.pinged(at(5));
        assert_eq!(heartbeat.quiet(at(7)), Quiet::Wait, "no second ping while one is out");
        heartbeat.heard(at(7));
        assert_eq!(heartbeat.quiet(at(11)), Quiet::Wait, "quiet counts from the last message");
        assert_eq!(heartbeat.quiet(at(12)), Quiet::Ping);
        heartbeat.pinged(at(12));
        assert_eq!(heartbeat.quiet(at(14)), Quiet::Wait);
        assert_eq!(heartbeat.quiet(at(15)), Quiet::Lost);
        // A slow store's ping may take four of its timeouts.
        let mut slow = Heartbeat::new(start, Duration::from_secs(2));
        slow.pinged(at(5));
        assert_eq!(slow.quiet(at(12)), Quiet::Wait);
        assert_eq!(slow.quiet(at(13)), Quiet::Lost);
        // However slow (a timeout of "no limit"), a minute at most.
        let mut slowest = Heartbeat::new(start, Duration::MAX);
        slowest.pinged(at(5));
        assert_eq!(slowest.quiet(at(64)), Quiet::Wait);
        assert_eq!(slowest.quiet(at(65)), Quiet::Lost);
    }

    #[test]
    fn backoff_doubles_up_to_a_second_and_starts_over_after_a_success() {
        let mut backoff = Backoff::default();
        let delays: Vec<Duration> = (0..7).map(|_| backoff.next_delay()).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(delays, [ms(50), ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), ms(50));
    }
}
