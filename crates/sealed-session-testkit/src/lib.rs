//! Test support for sealed-session's own tests (not published): harnesses
//! that start real servers on free loopback ports and stop them on drop,
//! fixed keyrings, and clocks.
//!
//! Every harness fails the test (never skips it) when its server is not
//! installed: `scripts/test.sh` installs them.

// Test support: failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

pub mod adapter;
#[cfg(feature = "bench")]
pub mod bench;
pub mod browser;
pub mod demo;
pub mod postgres;
pub mod proxy;
pub mod redis;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sealed_session::{
    Clock, Keyring, ManualClock, MasterKey, Revocation, RevocationStore, Sealer, Session, SessionId,
    StoreError, Verifier, VerifyError,
};

/// A port on loopback that was free a moment ago.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// For processes a test binary keeps for all its tests (in a `static`,
/// which is never dropped; a test process that is killed drops nothing
/// either): a watchdog that, once this process has exited, kills the
/// process group `group` if there is one and every process whose command
/// line names `dir`, then removes `dir`. It polls every 200 ms, in a process
/// group of its own (a Ctrl-C to the tests does not stop it), and `dir`
/// reaches it through its environment, so that it does not name `dir`
/// itself.
#[allow(clippy::zombie_processes)] // it outlives this process by design
pub fn clean_up_at_exit(dir: &std::path::Path, group: Option<u32>) {
    use std::os::unix::process::CommandExt as _;
    let script = r#"while kill -0 "$WATCHED" 2>/dev/null; do sleep 0.2; done
if [ -n "$GROUP" ]; then kill -KILL -- "-$GROUP"; fi
pkill -KILL -f -- "$DIR"
sleep 1
rm -rf -- "$DIR""#;
    std::process::Command::new("bash")
        .args(["-c", script])
        .env("WATCHED", std::process::id().to_string())
        .env("GROUP", group.map(|group| group.to_string()).unwrap_or_default())
        .env("DIR", dir)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the clean-up watchdog");
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

/// Moves `clock` to one second past the real time now: past the generation
/// a store set up since [`clock_at_now`] dated with its own clock. Setting a
/// store up can take a second or more on a busy machine, and a login at the
/// generation's second, on a clock that does not move, is refused
/// (`LoginError::CutoffAhead`).
pub fn past_the_generation(clock: &ManualClock) {
    clock.set_unix(unix_now() + 1);
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

/// For a store given a server clock (at Unix second `now`) an hour or more
/// behind its own: a denylist entry lasts until its expiry by the server's
/// clock. The logout of a session with ten minutes left by it (long past by
/// the store's) is recorded, a one-time entry is used once, and an expiry
/// the server's clock has reached is still refused. Returns the IDs of the
/// two entries, each meant to last 600 s more.
pub async fn assert_entries_last_by_the_servers_clock(
    store: &impl RevocationStore,
    now: u64,
) -> [SessionId; 2] {
    let (logged_out, challenge) = (Session::new(()).id(), Session::new(()).id());
    store.revoke_session(logged_out, now + 600).await.unwrap();
    assert!(store.revoke_session_once(challenge, now + 600).await.unwrap());
    assert!(!store.revoke_session_once(challenge, now + 600).await.unwrap(), "a one-time token used twice");
    for id in [logged_out, challenge] {
        assert!(store.state(None, id).await.unwrap().session_revoked);
    }
    let past = store.revoke_session(Session::new(()).id(), now).await;
    assert!(
        matches!(past, Err(StoreError::ExpiryNotInFuture { expires_at, now: at }) if expires_at == now && at == now),
        "an expiry the server's clock has reached: {past:?}"
    );
    [logged_out, challenge]
}

/// [`sealed_session::conformance::a_read_that_began_before_a_revocation_is_never_cached`],
/// for a store whose read goes at the check's first poll, until each of its
/// rounds has once had its read go before the revocation: timing decides
/// it, so up to five attempts on a loaded machine.
pub async fn assert_reads_before_revocations_are_never_cached<S: RevocationStore>(store: &S) {
    let mut read_before = [false; 3];
    for _ in 0..5 {
        let attempt =
            sealed_session::conformance::a_read_that_began_before_a_revocation_is_never_cached(store);
        for (seen, now) in read_before.iter_mut().zip(attempt.await) {
            *seen |= now;
        }
        if read_before == [true; 3] {
            return;
        }
    }
    panic!("in five attempts, these rounds never read before their revocation: {read_before:?}");
}

/// Revocations between two servers `a` and `b` of one store, each
/// direction in turn: twenty logouts of a user everywhere, two of one
/// session, and last a logout of everyone. Each time the other server has
/// the session cached as valid, the revoker refuses it at once, and the
/// other refuses it as revoked, for the same reason (not for a store
/// error), within two seconds, by the store's messages: on clocks that do
/// not move, only a message can end a cached answer. Returns the slowest,
/// for the log; how fast is the benchmarks' to measure. Leaves everyone
/// logged out.
pub async fn assert_revocations_propagate<S: RevocationStore>(a: &Verifier<S>, b: &Verifier<S>) -> Duration {
    let kinds = std::iter::repeat_n(Revocation::User, 20)
        .chain(std::iter::repeat_n(Revocation::Session, 2))
        .chain([Revocation::All]);
    let mut slowest = Duration::ZERO;
    for (round, kind) in kinds.enumerate() {
        let user = format!("user-{round}");
        let (revoker, other) = if round % 2 == 0 { (a, b) } else { (b, a) };
        let session = revoker.login(&user, ()).await.unwrap();
        let token = revoker.sealer().seal(&session).unwrap();
        assert!(other.open::<()>(&token).await.is_ok());
        assert!(other.open::<()>(&token).await.is_ok()); // cached
        match kind {
            Revocation::User => {
                revoker.logout_everywhere(&user).await.unwrap();
            }
            Revocation::Session => revoker.logout(&session).await.unwrap(),
            _ => {
                // The cutoff is the earlier of the store's time and the
                // revoker's; the servers' clocks stand a second ahead of
                // the real time, so wait until the store's has passed it.
                let opened = other.open::<()>(&token).await.unwrap();
                let issued = opened.session().issued_at().unwrap().unix_timestamp();
                while unix_now() <= issued {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                revoker.logout_all().await.unwrap();
            }
        }
        let revoked = |result: Result<_, VerifyError>| match result {
            Ok(_) => false,
            Err(VerifyError::Revoked(why)) if why == kind => true,
            Err(err) => panic!("refused otherwise than as revoked ({kind:?}): {err:?}"),
        };
        assert!(revoked(revoker.open::<()>(&token).await), "{kind:?}: the revoker still accepts the token");
        let took = within(Duration::from_secs(2), async || revoked(other.open::<()>(&token).await))
            .await
            .unwrap_or_else(|| panic!("{kind:?}: the other server still accepted the token 2 s after"));
        slowest = slowest.max(took);
    }
    slowest
}

/// After `verifier` cached the answer for alice's `token` on `clock`, her
/// epoch was raised behind the store's back (no message): the cached answer
/// stands for the cache TTL (1 s), and not a millisecond more.
pub async fn assert_an_unheard_revocation_lasts_the_cache_ttl<S: RevocationStore>(
    clock: &ManualClock,
    verifier: &Verifier<S>,
    token: &str,
) {
    clock.advance(Duration::from_millis(999));
    assert!(verifier.open::<()>(token).await.is_ok(), "within the TTL the cached answer stands");
    clock.advance(Duration::from_millis(1));
    assert!(matches!(verifier.open::<()>(token).await, Err(VerifyError::Revoked(Revocation::User))));
}

/// A server's cache holds a user's old epoch for a moment after another
/// server logged the user out everywhere, until the store's message
/// arrives; a login on that other server in that moment seals the new
/// epoch. On server `b`, which has alice's epoch 0 cached, `bump` raises it
/// behind the store's back (no message), then `other` signs her in: that
/// session opens on `b` too, not taken for lost data (a store fault, which
/// would remove its cookie), for the cache answers only for a session ID
/// it has read, and reads the user's epoch with it.
pub async fn assert_a_newer_session_opens_past_a_cached_epoch<S: RevocationStore>(
    b: &Verifier<S>,
    other: &Verifier<S>,
    bump: impl FnOnce(),
) {
    let token = b.sealer().seal(&b.login("alice", ()).await.unwrap()).unwrap();
    assert!(b.open::<()>(&token).await.is_ok()); // epoch 0 cached now
    bump();
    let newer = other.sealer().seal(&other.login("alice", ()).await.unwrap()).unwrap();
    assert_eq!(b.open::<()>(&newer).await.map(|v| v.session().epoch()).ok(), Some(1));
}

/// Everything logged through `tracing` in this process, from any thread or
/// task, from the first call on: for tests of what a failure says in the
/// logs. Install it before the code under test starts its tasks.
#[derive(Clone)]
pub struct Logs(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Logs {
    /// The process's log capture (installed as the global subscriber on the
    /// first call; every call returns the same buffer).
    #[must_use]
    pub fn capture() -> Self {
        static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
        LOGS.get_or_init(|| {
            let logs = Logs(std::sync::Arc::default());
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::INFO)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
            logs
        })
        .clone()
    }

    /// The lines logged so far that contain every one of `words`.
    #[must_use]
    pub fn lines_with(&self, words: &[&str]) -> Vec<String> {
        let text = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
        text.lines().filter(|line| words.iter().all(|w| line.contains(w))).map(str::to_owned).collect()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
