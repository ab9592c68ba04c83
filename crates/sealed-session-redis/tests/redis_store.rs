//! The Redis store against real redis-server processes: conformance, two
//! servers sharing revocations, lost messages and subscriptions, Redis going
//! away and coming back, FLUSHALL, the eviction policy (hidden, refused,
//! switched on while running), and times dated by Redis.
//!
//! TLS, ACL users and Sentinel failover are in `production.rs`.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::future::Future as _;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use sealed_session::{
    Clock, LoginError, ManualClock, Revocation, RevocationStore, Sealer, StoreError, Verifier, VerifyError,
};
use sealed_session_redis::{ConnectError, RedisConfig, RedisStore};
use sealed_session_testkit::redis::{RedisOptions, RedisServer};
use sealed_session_testkit::{
    assert_a_newer_session_opens_past_a_cached_epoch, assert_an_unheard_revocation_lasts_the_cache_ttl,
    assert_entries_last_by_the_servers_clock, assert_revocations_propagate, clock_at_now,
    past_the_generation, sealer, unix_now, within, Logs,
};

fn config() -> RedisConfig {
    RedisConfig::default().with_timeout(Duration::from_millis(300))
}

/// One "server": a verifier with its own store, cache and subscription, on
/// `clock` as it is (one set behind on purpose, say).
async fn server_on(url: &str, config: RedisConfig, clock: &ManualClock) -> Verifier<RedisStore> {
    let store = RedisStore::connect_with(url, config, clock.clone()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
    Verifier::new(sealer(5, clock), store)
}

/// One server whose clock, once the store is set up, is moved to now: past
/// the generation Redis may have dated meanwhile.
async fn server_with(url: &str, config: RedisConfig, clock: &ManualClock) -> Verifier<RedisStore> {
    let verifier = server_on(url, config, clock).await;
    past_the_generation(clock);
    verifier
}

async fn server(redis: &RedisServer, clock: &ManualClock) -> Verifier<RedisStore> {
    server_with(&redis.url(), config(), clock).await
}

/// A server on the system clock, for tests where Redis's time and the
/// server's must agree (a cutoff "now" must cover a session issued "now").
async fn system_server(url: &str, config: RedisConfig) -> Verifier<RedisStore> {
    let store = RedisStore::connect_with(url, config, sealed_session::SystemClock).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
    Verifier::new(Sealer::builder(sealed_session_testkit::keyring(5)).build().unwrap(), store)
}

async fn login(verifier: &Verifier<RedisStore>, user: &str) -> String {
    verifier.sealer().seal(&verifier.login(user, ()).await.unwrap()).unwrap()
}

/// One server on a manual clock (at now), and a token of alice's from it.
async fn alice_on_one_server(redis: &RedisServer) -> (ManualClock, Verifier<RedisStore>, String) {
    let clock = clock_at_now();
    let verifier = server(redis, &clock).await;
    let token = login(&verifier, "alice").await;
    (clock, verifier, token)
}

/// Captured logs, a Redis, a server on it that reads Redis's settings every
/// 100 ms, and a token of alice's from it.
async fn watching_server() -> (Logs, RedisServer, Verifier<RedisStore>, String) {
    let logs = Logs::capture();
    let redis = RedisServer::start();
    let config = config().with_policy_check_interval(Duration::from_millis(100));
    let verifier = system_server(&redis.url(), config).await;
    let token = login(&verifier, "alice").await;
    (logs, redis, verifier, token)
}

/// Waits (at most 2 s) until `verifier` refuses `token` because Redis
/// cannot be trusted, and checks that the log says why at `error`.
async fn refuses_as_untrusted_and_says_why(
    redis: &RedisServer,
    verifier: &Verifier<RedisStore>,
    token: &str,
    logs: &Logs,
    why: &str,
) {
    let noticed = within(Duration::from_secs(2), async || {
        matches!(verifier.open::<()>(token).await, Err(VerifyError::Store(StoreError::Untrusted(_))))
    })
    .await;
    assert!(noticed.is_some(), "a store whose Redis may lose revocations ({why}) still answered");
    let said = logs.lines_with(&["ERROR", why, "refuses every session", &redis.log_label()]);
    assert!(!said.is_empty(), "the log says why: {why}");
}

fn refused_by_store(result: &Result<impl std::fmt::Debug, VerifyError>) -> bool {
    matches!(result, Err(VerifyError::Store(_)))
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    // Subscribed, so that the cache is in use.
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
    assert_eq!(store.wait_replicas(), 0, "one server: revocations wait for no replica");
    sealed_session::conformance::run(&store).await;
}

/// The conformance suite's race, until each of its rounds (a session's
/// logout, a user's, everyone's) has once had its read go to Redis before
/// the revocation: none of those reads is cached.
#[tokio::test]
async fn a_read_sent_before_a_revocation_is_never_cached() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
    sealed_session_testkit::assert_reads_before_revocations_are_never_cached(&store).await;
}

/// A cutoff ahead of Redis's time (written by hand here: one a caller
/// cannot set, as after Redis's clock stepped back) is never lowered by a
/// later global logout.
#[tokio::test]
async fn a_cutoff_ahead_of_the_stores_time_is_never_lowered() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let ahead = u64::try_from(unix_now()).unwrap() + 3600;
    assert_eq!(redis.cli(&["SET", "sealed-session:floor", &ahead.to_string()]), "OK");
    assert_eq!(store.revoke_all(0).await.unwrap(), ahead);
    assert_eq!(store.revoke_all(ahead - 3600).await.unwrap(), ahead);
    assert_eq!(redis.cli(&["GET", "sealed-session:floor"]), ahead.to_string());
}

/// A cutoff that is not a number (written by hand) is corrupt data, and a
/// recovery that meets it changes nothing: the record of a fault stays, so
/// that every server goes on refusing until the key is mended.
#[tokio::test]
async fn a_cutoff_that_is_no_number_is_corrupt_and_a_recovery_leaves_the_fault_recorded() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    // What Lua's tonumber would take too, and a time past any script's.
    for floor in ["inf", "nan", "1e300", "0x10", " 5", "99999999999999999", "soon"] {
        assert_eq!(redis.cli(&["SET", "sealed-session:floor", floor]), "OK");
        let result = store.revoke_all(0).await;
        assert!(matches!(result, Err(StoreError::Corrupt(_))), "{floor}: {result:?}");
    }
    assert_eq!(redis.cli(&["SET", "sealed-session:untrusted", "maxmemory-policy was allkeys-lru"]), "OK");
    match RedisStore::connect(&redis.url()).await {
        Err(err @ ConnectError::Redis(_)) => assert!(err.to_string().contains("not a number"), "{err}"),
        other => panic!("a recovery past a corrupt cutoff: {:?}", other.map(drop)),
    }
    assert_eq!(redis.cli(&["GET", "sealed-session:untrusted"]), "maxmemory-policy was allkeys-lru");
    assert_eq!(redis.cli(&["GET", "sealed-session:floor"]), "soon");
}

/// A store for tools that act on the servers' store (`existing_only`)
/// refuses a keyspace no server has set up (a wrong database number, say)
/// and writes nothing to it; once a server has, it connects.
#[tokio::test]
async fn existing_only_refuses_a_keyspace_no_server_set_up() {
    let redis = RedisServer::start();
    let url = redis.url();
    let tool =
        || RedisStore::connect_with(&url, config().with_existing_only(true), sealed_session::SystemClock);
    let refused = tool().await;
    assert!(
        matches!(&refused, Err(ConnectError::NotInUse { prefix }) if prefix == "sealed-session"),
        "{refused:?}"
    );
    assert_eq!(redis.cli(&["DBSIZE"]), "0", "nothing written");
    drop(RedisStore::connect(&redis.url()).await.unwrap());
    assert!(tool().await.is_ok());
}

#[tokio::test]
async fn passes_the_registry_conformance_suite() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    sealed_session::conformance::run_registry(&store).await;
    // Each user's hash expires with its last record: nothing outlives the
    // sessions it lists.
    let mut conn =
        redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg("sealed-session:registry:*").query_async(&mut conn).await.unwrap();
    assert!(!keys.is_empty(), "the records are hashes under the prefix");
    for key in keys {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.unwrap();
        assert!(ttl > 0, "{key} has no expiry");
    }
    // At the end of its latest record, whichever was written last.
    let now = u64::try_from(unix_now()).unwrap();
    let record = |expires_at| sealed_session::SessionRecord {
        id: sealed_session::Session::new(()).id(),
        user_id: "carol".to_owned(),
        epoch: 0,
        created_at: now,
        last_seen: now,
        expires_at,
        user_agent: String::new(),
        remembered: false,
        device_bound: false,
    };
    for (user, ends) in [("carol", [now + 3600, now + 100]), ("dave", [now + 100, now + 3600])] {
        for expires_at in ends {
            let record = sealed_session::SessionRecord { user_id: user.to_owned(), ..record(expires_at) };
            sealed_session::SessionRegistry::record(&store, &record).await.unwrap();
        }
        let key = format!("sealed-session:registry:{user}");
        let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut conn).await.unwrap();
        assert!(
            (3590..=3600).contains(&ttl),
            "{user}'s expires in {ttl} s, not with its latest record's end"
        );
    }
}

#[tokio::test]
async fn the_store_takes_the_applications_own_client() {
    let redis = RedisServer::start();
    // RESP2 and RESP3 (where a script's `false` would be a boolean, not nil).
    for url in [redis.url(), format!("{}?protocol=resp3", redis.url())] {
        let client = redis::Client::open(url.as_str()).unwrap();
        let store = RedisStore::with_client(client, config(), sealed_session::SystemClock).await.unwrap();
        assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
        let verifier =
            Verifier::new(Sealer::builder(sealed_session_testkit::keyring(5)).build().unwrap(), store);
        let token = login(&verifier, "alice").await;
        verifier.logout_everywhere("alice").await.unwrap();
        assert!(
            matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))),
            "{url}"
        );
    }
}

/// Over RESP3 the redis crate reconnects as soon as it hears a connection
/// drop, so no command fails to say that Redis went away. The server it
/// reaches again must have its settings read before it is trusted: here
/// Redis restarts while the store is idle and comes back as a cache that
/// may evict keys. Its user may not subscribe, so no lost subscription
/// says it either.
#[tokio::test]
async fn a_resp3_connection_that_comes_back_by_itself_is_not_trusted_unread() {
    let no_subscribe =
        ["--user", "default", "on", "nopass", "~*", "&*", "+@all", "-subscribe", "-psubscribe"];
    let mut redis = RedisServer::start_with(RedisOptions::default().args(&no_subscribe));
    let client = redis::Client::open(format!("{}?protocol=resp3", redis.url())).unwrap();
    let store = RedisStore::with_client(client, config(), sealed_session::SystemClock).await.unwrap();
    assert!(!store.wait_until_subscribed(Duration::from_millis(300)).await, "the user may not subscribe");
    let verifier = Verifier::new(Sealer::builder(sealed_session_testkit::keyring(5)).build().unwrap(), store);
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());

    redis.stop();
    redis.restart();
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let result = verifier.open::<()>(&token).await;
    assert!(matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_)))), "{result:?}");
}

/// A user that may not subscribe is told apart from a failing Redis: its
/// refused subscriptions, retried with backoff, do not count as failures,
/// which would make every check after each one read Redis's settings
/// again (the checks go to Redis anyway, with no subscription).
#[tokio::test]
async fn a_user_that_may_not_subscribe_is_not_a_failing_redis() {
    let no_subscribe =
        ["--user", "default", "on", "nopass", "~*", "&*", "+@all", "-subscribe", "-psubscribe"];
    let redis = RedisServer::start_with(RedisOptions::default().args(&no_subscribe));
    let client = redis::Client::open(redis.url()).unwrap();
    let store = RedisStore::with_client(client, config(), sealed_session::SystemClock).await.unwrap();
    assert!(!store.wait_until_subscribed(Duration::from_millis(300)).await, "the user may not subscribe");
    let verifier = Verifier::new(Sealer::builder(sealed_session_testkit::keyring(5)).build().unwrap(), store);
    let token = login(&verifier, "alice").await;
    // Calls of CONFIG (how the store reads the settings) so far.
    let settings_read = || -> u64 {
        let stats = redis.cli(&["INFO", "commandstats"]);
        stats
            .lines()
            .filter(|line| line.starts_with("cmdstat_config"))
            .filter_map(|line| line.split("calls=").nth(1)?.split(',').next()?.parse::<u64>().ok())
            .sum()
    };
    // Commands Redis refused for the user's rights (the subscriptions).
    let refused = || -> u64 {
        let stats = redis.cli(&["INFO", "errorstats"]);
        let count = stats.lines().find_map(|line| line.strip_prefix("errorstat_NOPERM:count="));
        count.and_then(|count| count.trim().parse().ok()).unwrap_or(0)
    };
    let before = settings_read();
    let refused_before = refused();
    assert!(before > 0, "the settings were read at the start");
    // The subscription is tried again, with backoff (50 ms doubling to
    // 1 s), and refused each time; the checks meanwhile read no settings.
    let tried = within(Duration::from_secs(5), async || {
        assert!(verifier.open::<()>(&token).await.is_ok());
        tokio::time::sleep(Duration::from_millis(100)).await;
        refused() >= refused_before + 2
    });
    assert!(tried.await.is_some(), "the subscription was not tried again: {}", refused());
    assert_eq!(settings_read(), before, "the settings were read again");
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_errors() {
    assert!(matches!(RedisStore::connect("sqlite:/tmp/x").await, Err(ConnectError::Url(_))));
    let closed = sealed_session_testkit::free_port();
    let result =
        RedisStore::connect_with(&format!("redis://127.0.0.1:{closed}/0"), config(), clock_at_now()).await;
    assert!(matches!(result, Err(ConnectError::Redis(_))), "{result:?}");
    // A CA file the application's client would ignore is refused.
    let client = redis::Client::open(format!("rediss://localhost:{closed}/0")).unwrap();
    let with_ca = config().with_ca_file("/nonexistent/ca.pem");
    let result = RedisStore::with_client(client, with_ca, clock_at_now()).await;
    assert!(matches!(result, Err(ConnectError::CaFileWithClient)), "{result:?}");
}

#[tokio::test]
async fn a_redis_that_may_evict_keys_is_refused() {
    let redis = RedisServer::start_with(RedisOptions::default().args(&["--maxmemory-policy", "allkeys-lru"]));
    let result = RedisStore::connect_with(&redis.url(), config(), clock_at_now()).await;
    assert!(matches!(&result, Err(ConnectError::EvictionPolicy(p)) if p == "allkeys-lru"), "{result:?}");
    // Asserting noeviction does not override a policy Redis shows.
    let asserted = format!("{}?assume_noeviction=true", redis.url());
    let result = RedisStore::connect_with(&asserted, config(), clock_at_now()).await;
    assert!(matches!(&result, Err(ConnectError::EvictionPolicy(_))), "{result:?}");
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    assert!(RedisStore::connect_with(&redis.url(), config(), clock_at_now()).await.is_ok());
}

#[tokio::test]
async fn a_redis_that_hides_its_settings_is_refused_unless_the_operator_asserts_them() {
    // As managed services do: CONFIG is renamed away. The eviction policy
    // still shows in INFO (`noeviction` here); the persistence settings do not.
    let redis = RedisServer::start_with(RedisOptions::default().args(&["--rename-command", "CONFIG", ""]));
    let result = RedisStore::connect_with(&redis.url(), config(), clock_at_now()).await;
    match &result {
        Err(err @ ConnectError::DurabilityUnknown(_)) => {
            assert!(err.to_string().contains("assume_durable=true"), "the error names the fix: {err}");
        }
        other => panic!("expected DurabilityUnknown, got {other:?}"),
    }
    let clock = clock_at_now();
    let asserted = format!("{}?assume_durable=true", redis.url());
    let verifier = server_with(&asserted, config(), &clock).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
}

/// A revocation too few replicas acknowledged fails (`Replication`), but
/// says nothing against the server, which answered: checks go on without
/// reading its settings again. (Read again, they waited on the writer
/// behind the next revocation's `WAIT`, and checks failed while a replica
/// was down.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_too_few_replicas_acknowledged_fail_but_checks_go_on() {
    let redis = RedisServer::start();
    // Each revocation's own bound is the timeout and the wait together, so
    // the second gives up about a second after the first's answer: time
    // for the checks below.
    let config = (config().with_timeout(Duration::from_secs(1)).with_cache_ttl(Duration::ZERO))
        .with_wait_for_replicas(1, Duration::from_secs(2));
    let store = RedisStore::connect_with(&redis.url(), config, sealed_session::SystemClock).await.unwrap();
    let until = unix_now() as u64 + 3600;
    let revoke = |id: sealed_session::SessionId| {
        let store = store.clone();
        tokio::spawn(async move { store.revoke_session(id, until).await })
    };
    // Two revocations: the second waits on the writer behind the first's `WAIT`.
    let session = sealed_session::Session::new(());
    let first = revoke(session.id());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = revoke(sealed_session::Session::new(()).id());
    match first.await.unwrap() {
        Err(StoreError::Replication { acknowledged: 0, required: 1 }) => {}
        other => panic!("expected a replication error, got {other:?}"),
    }
    // The second holds the writer in its own `WAIT` now; checks answer,
    // and so does the session registry.
    for _ in 0..5 {
        let state = store.state(None, session.id()).await;
        assert!(state.as_ref().is_ok_and(|state| state.session_revoked), "{state:?}");
    }
    let listed = sealed_session::SessionRegistry::list(&store, "alice", unix_now() as u64).await;
    assert!(listed.is_ok(), "the registry waited behind a revocation's WAIT: {listed:?}");
    assert!(!second.is_finished(), "the second revocation was still waiting for a replica");
    let second = second.await.unwrap();
    // It gives up at its own bound, before its `WAIT` could answer: the
    // store's timer or the connection's, whichever fires first.
    assert!(matches!(second, Err(StoreError::Unavailable(_) | StoreError::Timeout(_))), "{second:?}");
}

/// A revocation counts the replicas that acknowledged it: one of two is
/// too few (`Replication`, with both numbers), one of one is enough.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_fewer_replicas_acknowledged_than_required_fails() {
    let redis = RedisServer::start();
    let _replica = RedisServer::replica_of(&redis);
    let until = unix_now() as u64 + 3600;
    // Waits long enough for a loaded machine's replica: `WAIT` answers as
    // soon as enough acknowledged, or at its bound with how many did.
    for (required, acknowledged) in [(2, Some(1)), (1, None)] {
        let config = (config().with_timeout(Duration::from_secs(3)))
            .with_wait_for_replicas(required, Duration::from_millis(1500));
        let store =
            RedisStore::connect_with(&redis.url(), config, sealed_session::SystemClock).await.unwrap();
        let result = store.revoke_session(sealed_session::Session::new(()).id(), until).await;
        match (acknowledged, result) {
            (Some(n), Err(StoreError::Replication { acknowledged, required: r })) => {
                assert_eq!((acknowledged, r), (n, required));
            }
            (None, Ok(())) => {}
            (_, other) => panic!("{required} required: {other:?}"),
        }
    }
}

/// Recovering from unsafe settings (a new cutoff) does not wait behind a
/// revocation that holds the writer in its `WAIT` for a replica: checks
/// answer again as soon as the settings are safe. (The cutoff was written
/// on the writer: while a replica was down, logouts could keep every check
/// failing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_from_unsafe_settings_does_not_wait_behind_a_revocation() {
    let redis = RedisServer::start();
    let config = config()
        .with_policy_check_interval(Duration::from_millis(100))
        .with_cache_ttl(Duration::ZERO)
        .with_wait_for_replicas(1, Duration::from_secs(6));
    let store = RedisStore::connect_with(&redis.url(), config, sealed_session::SystemClock).await.unwrap();
    // No replica: this revocation holds the writer in `WAIT` for 6 s.
    let waiting = {
        let store = store.clone();
        let until = unix_now() as u64 + 3600;
        tokio::spawn(async move { store.revoke_session(sealed_session::Session::new(()).id(), until).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let session = sealed_session::Session::new(()).id();
    let fault = unix_now();
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    let refused = within(Duration::from_secs(2), async || {
        matches!(store.state(None, session).await, Err(StoreError::Untrusted(_)))
    });
    assert!(refused.await.is_some(), "unsafe settings were not noticed");
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    let answered = within(Duration::from_secs(2), async || store.state(None, session).await.is_ok()).await;
    assert!(
        answered.is_some(),
        "checks waited for the revocation's WAIT: {:?}",
        store.state(None, session).await
    );
    let cutoff = cutoff_since(&redis, fault);
    assert!(!waiting.is_finished(), "the revocation was still waiting");
    assert!(matches!(waiting.await.unwrap(), Err(StoreError::Replication { .. })));
    // The marker of the unsafe settings went with the recovery, and did not
    // come back once the writer was free: no second cutoff (everyone
    // logged out again) at the next checks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(redis.cli(&["EXISTS", "sealed-session:untrusted"]), "0");
    assert_eq!(redis.cli(&["GET", "sealed-session:floor"]), cutoff, "a second cutoff");
}

/// The cutoff the store keeps in `redis`, which a recovery must have set:
/// no earlier than `fault` (Unix seconds), when the settings became unsafe.
fn cutoff_since(redis: &RedisServer, fault: i64) -> String {
    let cutoff = redis.cli(&["GET", "sealed-session:floor"]);
    let at: i64 = cutoff.parse().unwrap_or_else(|_| panic!("no cutoff was set: {cutoff:?}"));
    assert!(at >= fault, "the cutoff {at} is from before the fault at {fault}");
    cutoff
}

/// A store made in one runtime and kept after that runtime shut down (its
/// subscription task dropped with it) no longer takes its cache for fresh:
/// no one hears the messages that would invalidate it.
#[test]
fn a_subscription_dropped_with_its_runtime_stops_the_cache() {
    let redis = RedisServer::start();
    let first = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store = first.block_on(async {
        let store = RedisStore::connect_with(&redis.url(), config(), clock_at_now()).await.unwrap();
        assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
        store
    });
    drop(first);
    assert!(!store.is_subscribed(), "a dropped subscription left the cache in use");
}

/// A distant Redis recovering from unsafe settings: the new cutoff (one
/// round trip) is set in time, and the message that tells the other servers
/// of it (another) comes after the link is trusted. Both had to fit in one
/// timeout: the recovery timed out after its cutoff, the next check raised
/// the cutoff again, and so on, every session refused at every check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_distant_redis_recovering_from_unsafe_settings_sets_one_cutoff_and_is_trusted() {
    let redis = RedisServer::start();
    let proxy = sealed_session_testkit::proxy::Proxy::to(redis.port());
    let url = format!("redis://127.0.0.1:{}/0", proxy.port());
    let config = RedisConfig::default()
        .with_timeout(Duration::from_millis(500))
        .with_policy_check_interval(Duration::from_millis(100))
        .with_cache_ttl(Duration::ZERO);
    let store = RedisStore::connect_with(&url, config, sealed_session::SystemClock).await.unwrap();
    let session = sealed_session::Session::new(()).id();
    // A server in use has its scripts loaded (loading one takes two more
    // round trips).
    assert!(store.state(None, session).await.is_ok());
    let fault = unix_now();
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    let refused = within(Duration::from_secs(3), async || {
        matches!(store.state(None, session).await, Err(StoreError::Untrusted(_)))
    });
    assert!(refused.await.is_some(), "unsafe settings were not noticed");
    // Round trips of 300 ms: each in time, two together not.
    proxy.delay_replies(Duration::from_millis(300));
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    let answered = within(Duration::from_secs(15), async || store.state(None, session).await.is_ok()).await;
    assert!(answered.is_some(), "never trusted again: {:?}", store.state(None, session).await);
    let cutoff = cutoff_since(&redis, fault);
    // A check takes 1.2 s here: at least one more passes.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(redis.cli(&["GET", "sealed-session:floor"]), cutoff, "a second cutoff");
    assert!(store.state(None, session).await.is_ok());
}

/// A restart of a Redis that keeps snapshots but no append-only file loads
/// the last snapshot: the generation marker is there, the revocations made
/// since are not. Such a Redis is refused, asserted durable or not, and so
/// is an append-only file not written to disk before each answer.
#[tokio::test]
async fn a_redis_that_could_restart_from_an_older_snapshot_is_refused() {
    let redis = RedisServer::start_with(RedisOptions::default().args(&["--save", "3600 1"]));
    let clock = clock_at_now();
    for url in [redis.url(), format!("{}?assume_durable=true", redis.url())] {
        match RedisStore::connect_with(&url, config(), clock.clone()).await {
            Err(err @ ConnectError::NotDurable(_)) => {
                let said = err.to_string();
                assert!(said.contains("save \"3600 1\"") && said.contains("appendfsync always"), "{said}");
            }
            other => panic!("expected NotDurable, got {other:?}"),
        }
    }
    // Nor is a Redis without snapshots that keeps a replica's copy.
    let plain = RedisServer::start();
    assert_eq!(plain.cli(&["CONFIG", "SET", "rdb-del-sync-files", "no"]), "OK");
    let refused_as_not_durable = async |server: &RedisServer, says: &str| {
        let refused = RedisStore::connect_with(&server.url(), config(), clock.clone()).await;
        assert!(
            matches!(&refused, Err(err @ ConnectError::NotDurable(_)) if err.to_string().contains(says)),
            "{says}: {refused:?}"
        );
    };
    refused_as_not_durable(&plain, "rdb-del-sync-files").await;
    // An append-only file is durable only if every write is on disk first.
    assert_eq!(redis.cli(&["CONFIG", "SET", "appendonly", "yes"]), "OK");
    refused_as_not_durable(&redis, "everysec").await;
    assert_eq!(redis.cli(&["CONFIG", "SET", "appendfsync", "always"]), "OK");
    // ...and not skipped while Redis rewrites the file or saves a snapshot.
    assert_eq!(redis.cli(&["CONFIG", "SET", "no-appendfsync-on-rewrite", "yes"]), "OK");
    refused_as_not_durable(&redis, "no-appendfsync-on-rewrite").await;
    assert_eq!(redis.cli(&["CONFIG", "SET", "no-appendfsync-on-rewrite", "no"]), "OK");
    assert!(RedisStore::connect_with(&redis.url(), config(), clock).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_switched_on_later_make_every_check_fail_closed_until_everyone_is_logged_out() {
    let (logs, redis, verifier, token) = watching_server().await;
    assert_eq!(redis.cli(&["CONFIG", "SET", "save", "60 1"]), "OK");
    refuses_as_untrusted_and_says_why(&redis, &verifier, &token, &logs, "save \"60 1\"").await;
    // Fixed: a restart meanwhile could have rolled revocations back, so
    // every session issued until now is refused; new logins work.
    assert_eq!(redis.cli(&["CONFIG", "SET", "save", ""]), "OK");
    let back = within(Duration::from_secs(2), async || {
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All)))
    })
    .await;
    assert!(back.is_some(), "after the fix: {:?}", verifier.open::<()>(&token).await);
    let said = logs.lines_with(&["WARN", "may have loaded an older copy", &redis.log_label()]);
    assert!(!said.is_empty(), "the log says why");
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok());
}

/// An unsafe setting is remembered in Redis, not only by the server that
/// saw it: a server started after the fault was fixed (the others restarted,
/// or followed a failover) logs everyone out too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_one_server_saw_makes_a_server_started_after_the_fix_log_everyone_out() {
    let redis = RedisServer::start();
    let verifier = system_server(&redis.url(), config()).await;
    let token = login(&verifier, "alice").await;
    drop(verifier);
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]), "OK");
    let refused = RedisStore::connect_with(&redis.url(), config(), sealed_session::SystemClock).await;
    assert!(matches!(refused, Err(ConnectError::EvictionPolicy(_))), "{refused:?}");
    assert!(
        redis.cli(&["GET", "sealed-session:untrusted"]).contains("volatile-lru"),
        "the fault is recorded"
    );

    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    let verifier = system_server(&redis.url(), config()).await;
    let result = verifier.open::<()>(&token).await;
    assert!(matches!(result, Err(VerifyError::Revoked(Revocation::All))), "{result:?}");
    assert_eq!(redis.cli(&["EXISTS", "sealed-session:untrusted"]), "0", "the marker goes with the recovery");
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok());

    // A running server that finds the marker (left on a primary it failed
    // over to, say) at its next check does the same.
    let config = config().with_policy_check_interval(Duration::from_millis(100));
    let watching = system_server(&redis.url(), config).await;
    assert!(watching.open::<()>(&fresh).await.is_ok());
    assert_eq!(redis.cli(&["SET", "sealed-session:untrusted", "maxmemory-policy was allkeys-lru"]), "OK");
    let recovered = within(Duration::from_secs(2), async || {
        matches!(watching.open::<()>(&fresh).await, Err(VerifyError::Revoked(Revocation::All)))
    })
    .await;
    assert!(recovered.is_some(), "{:?}", watching.open::<()>(&fresh).await);
}

/// A server that saw a fault logs everyone out once the settings are safe
/// again though the fault's record is gone from Redis (evicted, as the
/// policy allows) and no other server recovered since.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_saw_a_fault_logs_everyone_out_though_its_record_is_gone() {
    let redis = RedisServer::start();
    let proxy = sealed_session_testkit::proxy::Proxy::to(redis.port());
    let config = config().with_policy_check_interval(Duration::from_millis(100));
    let server = system_server(&format!("redis://127.0.0.1:{}/0", proxy.port()), config).await;
    let token = login(&server, "alice").await;
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    let refused = within(Duration::from_secs(5), async || {
        matches!(server.open::<()>(&token).await, Err(VerifyError::Store(StoreError::Untrusted(_))))
    });
    assert!(refused.await.is_some(), "the server did not see the fault");
    // Held back, the server reads nothing while the record goes and the
    // policy is fixed.
    proxy.delay_replies(Duration::from_secs(2));
    assert_eq!(redis.cli(&["DEL", "sealed-session:untrusted"]), "1");
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    proxy.delay_replies(Duration::ZERO);
    let answered = within(Duration::from_secs(10), async || {
        !matches!(server.open::<()>(&token).await, Err(VerifyError::Store(_)))
    });
    assert!(answered.await.is_some(), "the server did not recover");
    let result = server.open::<()>(&token).await;
    assert!(matches!(result, Err(VerifyError::Revoked(Revocation::All))), "{:?}", result.map(drop));
}

/// While Redis's settings are unsafe, the requests that arrive during a
/// check of them wait for it and are refused as it was, rather than each
/// reading the settings again (and timing out in the queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_waiting_for_a_check_of_the_settings_share_its_refusal() {
    let (logs, redis, verifier, token) = watching_server().await;
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    refuses_as_untrusted_and_says_why(&redis, &verifier, &token, &logs, "allkeys-lru").await;
    let verifier = std::sync::Arc::new(verifier);
    assert_eq!(redis.cli(&["CONFIG", "RESETSTAT"]), "OK");
    let requests: Vec<_> = (0..60)
        .map(|_| {
            let (verifier, token) = (std::sync::Arc::clone(&verifier), token.clone());
            tokio::spawn(async move { verifier.open::<()>(&token).await })
        })
        .collect();
    for request in requests {
        let result = request.await.unwrap();
        assert!(matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_)))), "{result:?}");
    }
    let stats = redis.cli(&["INFO", "commandstats"]);
    let reads: u64 = stats
        .lines()
        .find_map(|line| line.strip_prefix("cmdstat_config|get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |calls| calls.parse().unwrap());
    // Six settings per check: one check per request would be 360 reads.
    assert!((6..100).contains(&reads), "{reads} CONFIG GETs for 60 requests");
}

/// A distant Redis: a check of its settings (four round trips) takes
/// longer than a request may wait. The check a request starts after a
/// failure goes on when that request gives up, and trusts the link: the
/// requests after it are answered long before the background check's
/// interval (a minute here). They were refused until then: each request
/// ran the check itself and was dropped before its end, and each dropped
/// request's timeout counted as a failure that voided any check under way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_of_the_settings_longer_than_a_request_still_ends_and_trusts_the_link() {
    let redis = RedisServer::start();
    let proxy = sealed_session_testkit::proxy::Proxy::to(redis.port());
    let url = format!("redis://127.0.0.1:{}/0", proxy.port());
    let config = config().with_cache_ttl(Duration::ZERO).with_policy_check_interval(Duration::from_secs(60));
    let verifier = server_with(&url, config, &clock_at_now()).await;
    let token = login(&verifier, "alice").await;
    // A reply later than the timeout (300 ms; the store's own, or the
    // client's under it): a failure, after which the settings are read again.
    proxy.delay_replies(Duration::from_millis(500));
    let late = verifier.open::<()>(&token).await;
    assert!(
        matches!(late, Err(VerifyError::Store(StoreError::Timeout(_) | StoreError::Unavailable(_)))),
        "{late:?}"
    );
    // Round trips of 100 ms: every command in time, a check's four not.
    proxy.delay_replies(Duration::from_millis(100));
    let answered = within(Duration::from_secs(10), async || verifier.open::<()>(&token).await.is_ok()).await;
    assert!(answered.is_some(), "never trusted again: {:?}", verifier.open::<()>(&token).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_eviction_policy_switched_on_later_makes_every_check_fail_closed() {
    let (logs, redis, verifier, token) = watching_server().await;
    let revoked = login(&verifier, "bob").await;
    let bob = verifier.open::<()>(&revoked).await.unwrap().into_session();
    verifier.logout(&bob).await.unwrap();
    let denied = format!("sealed-session:session:{}", bob.id().to_hex());
    assert!(verifier.open::<()>(&token).await.is_ok()); // cached now

    // The reproduction: an operator switches on eviction and memory fills
    // up. volatile-lru evicts keys with an expiry: bob's denylist entry,
    // while the generation (no expiry) stays.
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]), "OK");
    refuses_as_untrusted_and_says_why(&redis, &verifier, &token, &logs, "volatile-lru").await;
    let info = redis.cli(&["INFO", "memory"]);
    let used: u64 =
        info.lines().find_map(|l| l.strip_prefix("used_memory:")).unwrap().trim().parse().unwrap();
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", &(used + 200_000).to_string()]), "OK");
    let filler = redis::Client::open(redis.url()).unwrap();
    let mut filler = filler.get_multiplexed_async_connection().await.unwrap();
    for batch in 0..40 {
        let mut pipe = redis::pipe();
        for i in 0..500 {
            pipe.cmd("SET")
                .arg(format!("junk:{batch}:{i}"))
                .arg("x".repeat(200))
                .arg("EX")
                .arg(3600)
                .ignore();
        }
        let _: redis::RedisResult<()> = pipe.query_async(&mut filler).await;
    }
    assert_eq!(redis.cli(&["EXISTS", &denied]), "0", "bob's denylist entry was not evicted: no reproduction");
    assert_eq!(redis.cli(&["EXISTS", "sealed-session:generation"]), "1", "the generation must survive");
    // Bob's entry is gone: his logged-out session must still not open.
    let result = verifier.open::<()>(&revoked).await;
    assert!(matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_)))), "{result:?}");
    let err = verifier.logout_everywhere("alice").await.unwrap_err();
    assert!(err.to_string().contains("volatile-lru"), "{err}");

    // Fixed: the store answers again, but keys may have been evicted
    // meanwhile, so every session issued until now is refused...
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory", "0"]), "OK");
    let back = within(Duration::from_secs(2), async || {
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All)))
    })
    .await;
    assert!(back.is_some(), "after the fix: {:?}", verifier.open::<()>(&token).await);
    assert!(matches!(verifier.open::<()>(&revoked).await, Err(VerifyError::Revoked(Revocation::All))));
    let said = logs.lines_with(&["WARN", "keys may have been evicted", &redis.log_label()]);
    assert!(!said.is_empty(), "the log says why");
    // ...and new logins work.
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok());
}

#[test]
fn outside_a_tokio_runtime_checks_fail_closed_instead_of_panicking() {
    let redis = RedisServer::start();
    let clock = clock_at_now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = redis.url();
    let store =
        rt.block_on(RedisStore::connect_with(&url, config().with_cache_ttl(Duration::ZERO), clock.clone()));
    let verifier = Verifier::new(sealer(5, &clock), store.unwrap());
    past_the_generation(&clock);
    let token = verifier.sealer().seal(&rt.block_on(verifier.login("alice", ())).unwrap()).unwrap();
    let result = pollster::block_on(verifier.open::<()>(&token));
    assert!(matches!(result, Err(VerifyError::Store(StoreError::Unavailable(_)))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_server_reaches_the_other_by_its_messages() {
    let redis = RedisServer::start();
    let clock = clock_at_now();
    let (a, b) = (server(&redis, &clock).await, server(&redis, &clock).await);
    assert_revocations_propagate(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_raced_another_servers_revocation_is_never_cached() {
    let redis = RedisServer::start();
    let clock = clock_at_now();
    let (a, b) = (server(&redis, &clock).await, server(&redis, &clock).await);
    // Rounds in which the read really came first (its answer predates the
    // revocation); a round whose read was late proves nothing and is not counted.
    let mut raced = 0;
    for round in 0..20 {
        let user = format!("racer-{round}");
        let token = login(&a, &user).await;
        // A's check starts its read...
        let mut check = Box::pin(a.open::<()>(&token));
        let first = check.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        // ...B revokes, and its message reaches A, before A's check finishes.
        b.logout_everywhere(&user).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answer = match first {
            Poll::Ready(result) => result,
            Poll::Pending => check.await,
        };
        let after = a.open::<()>(&token).await;
        assert!(matches!(after, Err(VerifyError::Revoked(Revocation::User))), "round {round}: {after:?}");
        raced += usize::from(answer.is_ok());
        if raced == 3 {
            return;
        }
    }
    panic!("in 20 rounds the check's read came before the revocation {raced} times, not 3");
}

#[tokio::test]
async fn a_lost_message_keeps_a_revoked_session_alive_no_longer_than_the_cache_ttl() {
    let redis = RedisServer::start();
    let (clock, b, token) = alice_on_one_server(&redis).await;
    assert!(b.open::<()>(&token).await.is_ok()); // cached now

    // A revocation that bypasses the store, so no message is published.
    assert_eq!(redis.cli(&["INCR", "sealed-session:user:alice"]), "1");
    assert_an_unheard_revocation_lasts_the_cache_ttl(&clock, &b, &token).await;
}

/// `assert_a_newer_session_opens_past_a_cached_epoch`: a message not here yet.
#[tokio::test]
async fn a_session_newer_than_the_cached_epoch_opens() {
    let redis = RedisServer::start();
    let clock = clock_at_now();
    let (b, other) = (server(&redis, &clock).await, server(&redis, &clock).await);
    let bump = || assert_eq!(redis.cli(&["INCR", "sealed-session:user:alice"]), "1");
    assert_a_newer_session_opens_past_a_cached_epoch(&b, &other, bump).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_emptied_when_the_subscription_comes_back() {
    let redis = RedisServer::start();
    // The clock is never advanced: only emptying can end a cached answer.
    let (_clock, verifier, token) = alice_on_one_server(&redis).await;
    assert!(verifier.open::<()>(&token).await.is_ok()); // cached now

    // Only the subscription's connection dies; while it is down, a
    // revocation lands whose message this server cannot receive.
    assert!(redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]).parse::<u32>().unwrap() >= 1);
    let lost = within(Duration::from_secs(2), async || !verifier.store().is_subscribed()).await;
    assert!(lost.is_some(), "the store did not notice that its subscription died");
    assert_eq!(redis.cli(&["INCR", "sealed-session:user:alice"]), "1");
    let back = within(Duration::from_secs(5), async || {
        tokio::time::sleep(Duration::from_millis(20)).await;
        verifier.store().is_subscribed()
    })
    .await;
    assert!(back.is_some(), "the subscription did not come back");
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_closed_and_coming_back_recovers() {
    let mut redis = RedisServer::start();
    let clock = clock_at_now();
    let (a, b) = (server(&redis, &clock).await, server(&redis, &clock).await);
    let token = login(&a, "alice").await;
    assert!(a.open::<()>(&token).await.is_ok() && b.open::<()>(&token).await.is_ok());

    redis.stop();
    // The lost subscription empties the cache at once: within a second of
    // Redis's death (not of the loss being noticed; room for a loaded
    // machine, under the cache TTL a late report would add), no check is
    // answered from it, on either server.
    let refused = within(Duration::from_secs(1), async || {
        refused_by_store(&a.open::<()>(&token).await) && refused_by_store(&b.open::<()>(&token).await)
    });
    assert!(refused.await.is_some(), "a server accepted a session a second after Redis went down");
    assert!(
        !a.store().is_subscribed() && !a.store().wait_until_subscribed(Duration::from_millis(300)).await,
        "subscribed to a dead Redis"
    );
    for verifier in [&a, &b] {
        let started = std::time::Instant::now();
        while started.elapsed() < Duration::from_secs(1) {
            let result = verifier.open::<()>(&token).await;
            assert!(
                matches!(
                    result,
                    Err(VerifyError::Store(StoreError::Timeout(_) | StoreError::Unavailable(_)))
                ),
                "{result:?}"
            );
        }
    }

    // Redis comes back empty (no persistence): a new generation, so the old
    // session is refused, and new logins work on both servers without rebuilding them.
    redis.restart();
    for verifier in [&a, &b] {
        let answered =
            within(Duration::from_secs(5), async || !refused_by_store(&verifier.open::<()>(&token).await));
        assert!(answered.await.is_some(), "did not reconnect");
        assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))));
    }
    // Past the generation the first read after the restart dated.
    past_the_generation(&clock);
    let fresh = login(&a, "alice").await;
    assert!(a.open::<()>(&fresh).await.is_ok());
    assert!(b.open::<()>(&fresh).await.is_ok());
    assert!(a.store().wait_until_subscribed(Duration::from_secs(5)).await, "the subscription came back");
}

#[tokio::test]
async fn flushall_never_brings_a_revoked_session_back() {
    let redis = RedisServer::start();
    // On the system clock: the flush must come after the session's second,
    // as it would in production.
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
    let verifier = Verifier::new(
        sealed_session::Sealer::builder(sealed_session_testkit::keyring(5)).build().unwrap(),
        store,
    );
    let token = verifier.sealer().seal(&verifier.login("alice", ()).await.unwrap()).unwrap();
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));

    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    tokio::time::sleep(Duration::from_millis(1050)).await; // past the cache TTL, too
    assert!(
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))),
        "a revoked token came back after FLUSHALL"
    );
    // A login right after the new generation began opens.
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok(), "a fresh login works after the flush");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_generation_reaches_every_servers_cache_by_message() {
    let redis = RedisServer::start();
    // A keyspace in use for a while, and a clock that never moves: only a
    // message can end a cached answer.
    assert_eq!(redis.cli(&["SET", "sealed-session:generation", &(unix_now() - 10).to_string()]), "OK");
    let clock = ManualClock::at_unix(unix_now() - 1);
    let (a, b) =
        (server_on(&redis.url(), config(), &clock).await, server_on(&redis.url(), config(), &clock).await);
    let token = login(&a, "alice").await;
    assert!(a.open::<()>(&token).await.is_ok() && b.open::<()>(&token).await.is_ok()); // cached on both
    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    // A's next read finds no generation and starts one...
    a.store().state(None, sealed_session::Session::new(()).id()).await.unwrap();
    // ...and B hears of it.
    let refused = within(Duration::from_millis(500), async || {
        matches!(b.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All)))
    });
    assert!(refused.await.is_some(), "B kept answering from its cache after a new generation");
}

#[tokio::test]
async fn generations_and_global_logouts_are_dated_by_redis_not_the_app_server() {
    let redis = RedisServer::start();
    // This server's clock runs an hour slow.
    let clock = ManualClock::at_unix(unix_now() - 3600);
    let verifier = server_on(&redis.url(), config(), &clock).await;
    let generation: i64 = redis.cli(&["GET", "sealed-session:generation"]).parse().unwrap();
    assert!((generation - unix_now()).abs() <= 2, "generation {generation} is not Redis's time");
    let cutoff = verifier.logout_all().await.unwrap();
    assert!((cutoff as i64 - unix_now()).abs() <= 2, "global logout dated {cutoff}, not by Redis");
    // A server that far behind the store cannot issue sessions that would open.
    assert!(matches!(verifier.login("alice", ()).await, Err(LoginError::CutoffAhead { .. })));
}

#[tokio::test]
async fn stale_answers_are_an_explicit_opt_in() {
    let mut redis = RedisServer::start();
    let clock = clock_at_now();
    let config = config().with_stale_answers_for(Some(Duration::from_secs(30)));
    let verifier = server_with(&redis.url(), config, &clock).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    redis.stop();
    clock.advance(Duration::from_secs(10));
    assert!(verifier.open::<()>(&token).await.is_ok(), "opted in: answered from 10 s old data");
    clock.advance(Duration::from_secs(21));
    assert!(refused_by_store(&verifier.open::<()>(&token).await), "but never older than the bound");
}

/// A key the store did not write as it is (another type, a value that is
/// no number) is corrupt data, not an outage: refused as such even with
/// stale answers on (no cached answer stands in for it), and Redis stays
/// trusted meanwhile (its settings are not read again on every check).
#[tokio::test]
async fn a_key_of_another_type_or_value_is_corrupt_data_not_an_outage() {
    let redis = RedisServer::start();
    let clock = clock_at_now();
    let config = config().with_stale_answers_for(Some(Duration::from_secs(30)));
    let verifier = server_with(&redis.url(), config, &clock).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok(), "cached");
    let corrupt = |result: &Result<_, VerifyError>| {
        matches!(
            result,
            Err(VerifyError::Store(StoreError::Corrupt(sealed_session::CorruptKind::UnreadableValue)))
        )
    };
    let key = "sealed-session:user:alice";
    for written in [&["HSET", key, "x", "y"][..], &["SET", key, "abc"], &["SET", key, "-5"]] {
        let _ = redis.cli(&["DEL", key]);
        let reply = redis.cli(written);
        assert!(["1", "OK"].contains(&reply.as_str()), "{written:?}: {reply}");
        clock.advance(Duration::from_millis(1100));
        let result = verifier.open::<()>(&token).await;
        assert!(corrupt(&result), "{written:?}: {result:?}");
        assert!(format!("{:?}", verifier.store()).contains("trusted: true"), "{:?}", verifier.store());
    }
    assert_eq!(redis.cli(&["DEL", key]), "1");
    assert!(verifier.open::<()>(&token).await.is_ok());

    // A cutoff that is no number, met as the settings are read again (the
    // store's connections dropped): corrupt still, and Redis trusted.
    assert_eq!(redis.cli(&["SET", "sealed-session:floor", "soon"]), "OK");
    clock.advance(Duration::from_millis(1100));
    let result = verifier.open::<()>(&token).await;
    assert!(corrupt(&result), "{result:?}");
    let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "normal"]);
    assert_ne!(killed, "0", "the store's connections are dropped");
    let settled = within(Duration::from_secs(5), async || corrupt(&verifier.open::<()>(&token).await));
    assert!(settled.await.is_some(), "{:?}", verifier.open::<()>(&token).await);
    for _ in 0..3 {
        let result = verifier.open::<()>(&token).await;
        assert!(corrupt(&result), "{result:?}");
    }
    assert!(format!("{:?}", verifier.store()).contains("trusted: true"), "{:?}", verifier.store());
}

/// Stale answers stand in for a Redis that cannot be reached, never for
/// one whose settings were found unsafe: what was cached may have been
/// read while keys were being evicted, and an outage must not turn a store
/// that refuses into one that answers.
#[tokio::test]
async fn no_stale_answer_once_the_settings_were_found_unsafe() {
    let logs = Logs::capture();
    let mut redis = RedisServer::start();
    let config = config()
        .with_policy_check_interval(Duration::from_millis(100))
        .with_stale_answers_for(Some(Duration::from_secs(30)));
    let verifier = system_server(&redis.url(), config).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok(), "cached");
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    refuses_as_untrusted_and_says_why(&redis, &verifier, &token, &logs, "allkeys-lru").await;
    redis.stop();
    let result = verifier.open::<()>(&token).await;
    assert!(refused_by_store(&result), "answered from the cache of an untrusted Redis: {result:?}");
}

#[tokio::test]
async fn logout_of_one_session_expires_with_the_session_plus_the_leeway() {
    let redis = RedisServer::start();
    let (clock, verifier, token) = alice_on_one_server(&redis).await;
    let session = verifier.open::<()>(&token).await.unwrap().into_session();
    verifier.logout(&session).await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::Session))));
    let key = format!("sealed-session:session:{}", session.id().to_hex());
    let ttl: i64 = redis.cli(&["TTL", &key]).parse().unwrap();
    // The entry outlives the session (signed in at the clock's time, for
    // the default 12 h) by the clock leeway (60 s), for servers whose
    // clocks lag.
    let expected = clock.unix_now() + 12 * 3600 + 60 - unix_now();
    assert!((ttl - expected).abs() <= 2, "denylist entry TTL {ttl}, expected {expected} s");
    // A later logout with an earlier expiry (a token re-issued elsewhere) never shortens it.
    verifier.store().revoke_session(session.id(), unix_now() as u64 + 10).await.unwrap();
    let again: i64 = redis.cli(&["TTL", &key]).parse().unwrap();
    assert!((again - expected).abs() <= 2, "the entry was shortened to {again} s");
    // And no expiry in the past un-revokes it (the CLI's --until 1).
    let refused = verifier.store().revoke_session(session.id(), 1).await;
    assert!(matches!(refused, Err(StoreError::ExpiryNotInFuture { expires_at: 1, .. })), "{refused:?}");
    assert_eq!(redis.cli(&["EXISTS", &key]), "1");
}

/// A Redis Cluster node is refused at connect, saying why: a check reads
/// several keys in one script, which a cluster refuses (here one node that
/// serves every slot, on which single-key commands work), also where
/// `CONFIG` is hidden, as managed services do.
#[tokio::test]
async fn a_redis_cluster_node_is_refused_at_connect() {
    for hidden in [false, true] {
        let mut args = vec!["--cluster-enabled", "yes"];
        if hidden {
            args.extend(["--rename-command", "CONFIG", ""]);
        }
        let node = RedisServer::start_with(RedisOptions::default().args(&args));
        assert_eq!(node.cli(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]), "OK");
        let url = format!("{}?assume_noeviction=true&assume_durable=true", node.url());
        match RedisStore::connect_with(&url, config(), sealed_session::SystemClock).await {
            Err(err @ ConnectError::Cluster) => {
                assert!(err.to_string().contains("standalone Redis"), "{err}")
            }
            other => panic!("a cluster node (CONFIG hidden: {hidden}) was accepted: {:?}", other.map(|_| ())),
        }
    }
}

/// Redis expires denylist entries by its own clock. One that runs ahead of
/// the application servers' (here by an hour, far past the 60 s leeway)
/// must neither refuse the logout of a session that still opens for them,
/// nor drop its entry early, nor let a one-time token be used again: every
/// entry lasts until its expiry by the clock of the server that wrote it.
#[tokio::test]
async fn a_redis_clock_ahead_of_the_servers_shortens_no_denylist_entry() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(unix_now() - 3600);
    let store = RedisStore::connect_with(&redis.url(), config(), clock.clone()).await.unwrap();
    let now = u64::try_from(clock.unix_now()).unwrap();
    for id in assert_entries_last_by_the_servers_clock(&store, now).await {
        let ttl: i64 =
            redis.cli(&["TTL", &format!("sealed-session:session:{}", id.to_hex())]).parse().unwrap();
        assert!((ttl - 600).abs() <= 2, "entry kept {ttl} s, not 600");
    }
}

/// The documented staleness bound (a lost message hides a revocation for at
/// most 1 s) holds for every configuration: a longer cache TTL is refused
/// before anything connects.
#[tokio::test]
async fn a_cache_ttl_beyond_the_staleness_bound_is_refused() {
    let config = config().with_cache_ttl(Duration::from_secs(30));
    match RedisStore::connect_with("redis://127.0.0.1:1/0", config, ManualClock::at_unix(0)).await {
        Err(err @ ConnectError::CacheTtl(_)) => assert!(err.to_string().contains("at most 1 s"), "{err}"),
        other => panic!("a 30 s cache TTL was accepted: {:?}", other.map(|_| ())),
    }
    // A prefix under which another store's keys would be this one's.
    for prefix in ["sealed-session:user:x", ""] {
        let config = self::config().with_prefix(prefix);
        match RedisStore::connect_with("redis://127.0.0.1:1/0", config, ManualClock::at_unix(0)).await {
            Err(err @ ConnectError::Prefix(_)) => {
                assert!(err.to_string().contains("user or registry"), "{err}")
            }
            other => panic!("prefix {prefix:?} was accepted: {:?}", other.map(|_| ())),
        }
    }
    // The policy check's interval is a public field: set past the builder's
    // cap, or to zero, it is refused all the same.
    for interval in [Duration::from_secs(3600), Duration::ZERO] {
        let mut unchecked = self::config();
        unchecked.policy_check_interval = interval;
        match RedisStore::connect_with("redis://127.0.0.1:1/0", unchecked, ManualClock::at_unix(0)).await {
            Err(err @ ConnectError::PolicyCheckInterval(_)) => {
                assert!(err.to_string().contains("60 s"), "{err}")
            }
            other => panic!("a {interval:?} policy check interval was accepted: {:?}", other.map(|_| ())),
        }
    }
    // A zero timeout would fail every call as if Redis were down.
    let url = "redis://127.0.0.1:1/0?timeout_ms=0";
    match RedisStore::connect_with(url, self::config(), ManualClock::at_unix(0)).await {
        Err(err @ ConnectError::TimeoutTooShort(_)) => {
            assert!(err.to_string().contains("timeout_ms"), "{err}")
        }
        other => panic!("a zero timeout was accepted: {:?}", other.map(|_| ())),
    }
    // The cap itself is allowed (refused here only as unreachable).
    let mut longest = self::config();
    longest.policy_check_interval = sealed_session_redis::MAX_POLICY_CHECK_INTERVAL;
    let connected = RedisStore::connect_with("redis://127.0.0.1:1/0", longest, ManualClock::at_unix(0)).await;
    assert!(matches!(connected, Err(ConnectError::Redis(_))), "{:?}", connected.map(|_| ()));
}

/// Revocations that wait for replicas with no time to wait would all fail
/// as if the replicas were down: refused at connect, naming the setting.
/// With no replica to wait for, the wait's timeout does not matter.
#[tokio::test]
async fn a_zero_wait_for_replicas_is_refused() {
    let redis = RedisServer::start();
    let url = format!("{}?wait_replicas=1&wait_timeout_ms=0", redis.url());
    match RedisStore::connect_with(&url, config(), clock_at_now()).await {
        Err(err @ ConnectError::TimeoutTooShort(_)) => {
            assert!(err.to_string().contains("wait_timeout_ms"), "{err}")
        }
        other => panic!("a zero wait was accepted: {:?}", other.map(|_| ())),
    }
    let url = format!("{}?wait_replicas=0&wait_timeout_ms=0", redis.url());
    assert!(RedisStore::connect_with(&url, config(), clock_at_now()).await.is_ok());
}

/// A store whose URL names a replica is refused at connect: a replica's
/// answers can lag its primary's without end (`replica-serve-stale-data`),
/// and it refuses revocations. A primary demoted while the store runs is
/// noticed at the next failed write, or with none at the next reading of
/// the settings, and every check then fails until it is the primary again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_is_never_taken_for_the_primary() {
    let primary = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let users = sealed_session_testkit::redis::acl_file(dir.path(), &[("norole", "pw", "~* &* +@all -role")]);
    let replica = RedisServer::replica_with(&primary, &["--aclfile", users.to_str().unwrap()]);
    // One whose `ROLE` answers something else (a renamed command, or a
    // Redis-compatible server): then INFO says too.
    let renamed = RedisServer::replica_with(
        &primary,
        &["--rename-command", "ROLE", "REALROLE", "--rename-command", "LASTSAVE", "ROLE"],
    );
    assert!(renamed.cli(&["ROLE"]).parse::<u64>().is_ok(), "ROLE answers a number");
    let url = |user: &str| format!("redis://{user}:pw@127.0.0.1:{}/0", replica.port());
    // As the default user, and as one whose ACL refuses ROLE (then INFO says).
    for url in [replica.url(), url("norole"), renamed.url()] {
        match RedisStore::connect_with(&url, config(), sealed_session::SystemClock).await {
            Err(err @ ConnectError::NotPrimary(_)) => {
                let message = err.to_string();
                assert!(message.contains("slave") && message.contains("primary's address"), "{message}");
            }
            other => panic!("a replica was accepted: {other:?}"),
        }
    }

    let store =
        RedisStore::connect_with(&primary.url(), config(), sealed_session::SystemClock).await.unwrap();
    let session = sealed_session::Session::new(());
    assert!(store.state(None, session.id()).await.is_ok());
    let other = RedisServer::start();
    assert_eq!(primary.cli(&["REPLICAOF", "127.0.0.1", &other.port().to_string()]), "OK");
    let until = unix_now() as u64 + 3600;
    assert!(store.revoke_session(session.id(), until).await.is_err(), "a replica refuses writes");
    let state = store.state(None, session.id()).await;
    assert!(matches!(state, Err(StoreError::Untrusted(_))), "{state:?}");

    // Demoted with no write to fail: noticed at the next reading of the
    // settings, and trusted again once it is the primary again.
    let demoted = RedisServer::start();
    let reading_often = config().with_policy_check_interval(Duration::from_millis(100));
    let store =
        RedisStore::connect_with(&demoted.url(), reading_often, sealed_session::SystemClock).await.unwrap();
    assert!(store.state(None, session.id()).await.is_ok());
    assert_eq!(demoted.cli(&["REPLICAOF", "127.0.0.1", &other.port().to_string()]), "OK");
    let refused = within(Duration::from_secs(3), async || {
        matches!(store.state(None, session.id()).await, Err(StoreError::Untrusted(_)))
    });
    assert!(refused.await.is_some(), "a primary demoted to a replica was still trusted");
    assert_eq!(demoted.cli(&["REPLICAOF", "NO", "ONE"]), "OK");
    let back = within(Duration::from_secs(3), async || store.state(None, session.id()).await.is_ok());
    assert!(back.await.is_some(), "{:?}", store.state(None, session.id()).await);
}

/// A user whose ACL allows no channel (Redis 7's default for new users) is
/// refused at connect with the rule to add: every revocation would be
/// reported failed after its write, and no server would hear of another's.
#[tokio::test]
async fn a_user_that_may_not_publish_revocations_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let users = sealed_session_testkit::redis::acl_file(
        dir.path(),
        &[
            ("nochannel", "pw", "~* resetchannels +@all"),
            ("channel", "pw", "~* resetchannels &sealed-session:* +@all"),
        ],
    );
    let redis =
        RedisServer::start_with(RedisOptions::default().args(&["--aclfile", users.to_str().unwrap()]));
    let url = |user: &str| format!("redis://{user}:pw@127.0.0.1:{}/0", redis.port());
    match RedisStore::connect_with(&url("nochannel"), config(), sealed_session::SystemClock).await {
        Err(err @ ConnectError::ChannelDenied(_)) => {
            assert!(err.to_string().contains("&sealed-session:revocations"), "{err}");
        }
        other => panic!("{:?}", other.err()),
    }
    let store =
        RedisStore::connect_with(&url("channel"), config(), sealed_session::SystemClock).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
}

/// Timeouts of `Duration::MAX` ("no limit") are taken as such: the store
/// subscribes, writes (waiting for a replica as long as it takes) and
/// answers, and nothing panics on a time past what an `Instant` holds.
#[tokio::test]
async fn the_longest_timeouts_are_no_panic() {
    let primary = RedisServer::start();
    let replica = RedisServer::replica_of(&primary);
    replica.wait_for_sync();
    let config = RedisConfig::default().with_timeout(Duration::MAX).with_wait_for_replicas(1, Duration::MAX);
    let verifier = server_with(&primary.url(), config, &clock_at_now()).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
}

/// A Redis that takes connections but never answers (a stalled process:
/// here stopped with `SIGSTOP`) fails every call within the store's
/// timeout, closed: a check, a login and a revocation each give up rather
/// than hang the request.
#[tokio::test]
async fn a_redis_that_never_answers_fails_every_call_within_the_timeout() {
    let redis = RedisServer::start();
    let verifier = server(&redis, &clock_at_now()).await;
    let pid = redis.cli(&["INFO", "server"]);
    let pid = pid.lines().find_map(|l| l.strip_prefix("process_id:")).unwrap().trim().to_owned();
    let kill = |signal: &str| {
        assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success())
    };
    kill("-STOP");
    // Continued however the test ends, for the server's own clean-up.
    struct Continue<F: Fn(&str)>(F);
    impl<F: Fn(&str)> Drop for Continue<F> {
        fn drop(&mut self) {
            (self.0)("-CONT");
        }
    }
    let _continue = Continue(kill);
    let probe = verifier.sealer().seal(&sealed_session::Session::new(()).with_user("probe", 0)).unwrap();
    // The store's timeout, or the client's own answer timeout under it.
    let timed_out = |err: &StoreError| matches!(err, StoreError::Timeout(_) | StoreError::Unavailable(_));
    // Ten times the timeout: far more than it, far less than a hang.
    let checked = tokio::time::timeout(Duration::from_secs(3), verifier.open::<()>(&probe))
        .await
        .expect("a check hung on a Redis that never answers");
    assert!(matches!(&checked, Err(VerifyError::Store(err)) if timed_out(err)), "{checked:?}");
    let login =
        tokio::time::timeout(Duration::from_secs(3), verifier.login("bob", ())).await.expect("a login hung");
    assert!(matches!(&login, Err(LoginError::Store(err)) if timed_out(err)), "{login:?}");
    let revoked = tokio::time::timeout(Duration::from_secs(3), verifier.store().revoke_user("bob"))
        .await
        .expect("a revocation hung");
    assert!(matches!(&revoked, Err(err) if timed_out(err)), "{revoked:?}");
}

/// A subscription that stays quiet (no revocations) but hears its pings is
/// kept: it is not taken for lost after the 5 s of quiet and the 3 s a ping
/// may take, which would empty the cache every 8 s.
#[tokio::test]
async fn a_quiet_subscription_that_hears_its_pings_is_kept() {
    let redis = RedisServer::start();
    let store = RedisStore::connect_with(&redis.url(), config(), clock_at_now()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
    let subscriber = || {
        let clients = redis.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]);
        clients.split_whitespace().filter(|field| field.starts_with("id=")).collect::<Vec<_>>().join(" ")
    };
    let id = subscriber();
    assert!(id.starts_with("id=") && !id.contains(' '), "one subscriber: {id:?}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(store.is_subscribed(), "the quiet subscription was taken for lost");
    assert_eq!(subscriber(), id, "the quiet subscription was replaced");
}

/// A subscription that never delivered (a proxy between that confirms the
/// `SUBSCRIBE` and passes on no message) never puts the cache in use: it
/// must hear its own ping first, and checks go to Redis meanwhile, so
/// another server's logout is refused at once. Said once, at `warn`. The
/// same store through a proxy that delivers is subscribed at once.
#[tokio::test]
async fn a_subscription_that_never_delivered_is_never_trusted() {
    let logs = sealed_session_testkit::Logs::capture();
    let redis = RedisServer::start();
    let deaf = sealed_session_testkit::proxy::Proxy::to(redis.port());
    deaf.drop_messages();
    let url = |proxy: &sealed_session_testkit::proxy::Proxy| format!("redis://127.0.0.1:{}/0", proxy.port());
    let clock = clock_at_now();
    let store = RedisStore::connect_with(&url(&deaf), config(), clock.clone()).await.unwrap();
    let verifier = Verifier::new(sealer(5, &clock), store);
    past_the_generation(&clock);
    let other = server(&redis, &clock).await;
    let alice = login(&verifier, "alice").await;
    assert!(
        !verifier.store().wait_until_subscribed(Duration::from_secs(5)).await,
        "a deaf subscription is in use"
    );
    let label = format!("redis=127.0.0.1:{}", deaf.port());
    let said = logs.lines_with(&["WARN", "does not deliver", "its own ping", &label]);
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(verifier.open::<()>(&alice).await.is_ok());
    other.logout_everywhere("alice").await.unwrap();
    let result = verifier.open::<()>(&alice).await;
    assert!(matches!(result, Err(VerifyError::Revoked(Revocation::User))), "{result:?}");

    let hearing = sealed_session_testkit::proxy::Proxy::to(redis.port());
    let store = RedisStore::connect_with(&url(&hearing), config(), clock).await.unwrap();
    assert!(
        store.wait_until_subscribed(Duration::from_secs(5)).await,
        "a subscription through a proxy that delivers"
    );
}

/// A subscription that stops delivering without closing (a firewall or NAT
/// that forgot the connection: a proxy here that holds back what Redis
/// sends the subscriber) is noticed by the store's ping within its bounds
/// (5 s of quiet, 3 s for the ping): the cache stops being used, and a new
/// subscription brings it back.
#[tokio::test]
async fn a_subscription_that_delivers_nothing_is_noticed_and_replaced() {
    let redis = RedisServer::start();
    let proxy = sealed_session_testkit::proxy::Proxy::to(redis.port());
    let url = format!("redis://127.0.0.1:{}/0", proxy.port());
    let store = RedisStore::connect_with(&url, config(), clock_at_now()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
    proxy.freeze_subscribers();
    let started = std::time::Instant::now();
    while store.is_subscribed() {
        assert!(started.elapsed() < Duration::from_secs(20), "a silent subscription is still trusted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(3), "taken for lost before any ping could return");
    proxy.thaw();
    assert!(store.wait_until_subscribed(Duration::from_secs(10)).await, "no new subscription");
}
