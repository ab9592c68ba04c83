//! The Redis store against a real redis-server: conformance, two servers
//! sharing revocations, a lost message, Redis going away and coming back,
//! FLUSHALL, and checks racing a revocation.

#[path = "../../../tests/support/revocation_race.rs"]
mod revocation_race;
mod support;

use std::time::{Duration, Instant};

use sealed_session::{
    KeySpec, KeyState, Keyring, ManualClock, MasterKey, Revocation, Sealer, StoreError, Verifier, VerifyError,
};
use sealed_session_redis::{ConnectError, RedisConfig, RedisStore};
use support::RedisServer;

const T0: i64 = 1_800_000_000;

fn sealer(clock: &ManualClock) -> Sealer {
    let key = KeySpec {
        id: 1,
        state: KeyState::Primary,
        key: MasterKey::from_slice(&[5; 32]).unwrap(),
        created: None,
    };
    Sealer::builder(Keyring::new([key]).unwrap()).clock(clock.clone()).build().unwrap()
}

fn config() -> RedisConfig {
    RedisConfig::default().with_timeout(Duration::from_millis(300))
}

/// One "server": a verifier with its own store, cache and subscription.
async fn server(redis: &RedisServer, clock: &ManualClock) -> Verifier<RedisStore> {
    let store = RedisStore::connect_with(&redis.url(), config(), clock.clone()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
    Verifier::new(sealer(clock), store)
}

async fn login(verifier: &Verifier<RedisStore>, user: &str) -> String {
    verifier.sealer().seal(&verifier.login(user, ()).await.unwrap()).unwrap()
}

/// Polls `check` until it holds, for at most `limit`; returns how long it took.
async fn within(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    None
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let redis = RedisServer::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    sealed_session::conformance::run(&store).await;
    // And again with the cache warm and subscribed.
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
    sealed_session::conformance::run(&store).await;
}

#[tokio::test]
async fn bad_urls_and_unreachable_servers_are_errors() {
    assert!(matches!(RedisStore::connect("sqlite:/tmp/x").await, Err(ConnectError::Url)));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let result = RedisStore::connect_with(
        &format!("redis://127.0.0.1:{closed}/0"),
        config(),
        ManualClock::at_unix(T0),
    )
    .await;
    assert!(matches!(result, Err(ConnectError::Redis(_))));
}

#[tokio::test]
async fn a_redis_that_may_evict_keys_is_refused() {
    let redis = RedisServer::start();
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    let result = RedisStore::connect_with(&redis.url(), config(), ManualClock::at_unix(T0)).await;
    assert!(matches!(&result, Err(ConnectError::EvictionPolicy(p)) if p == "allkeys-lru"), "{result:?}");
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    assert!(RedisStore::connect_with(&redis.url(), config(), ManualClock::at_unix(T0)).await.is_ok());
}

#[test]
fn outside_a_tokio_runtime_checks_fail_closed_instead_of_panicking() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = redis.url();
    let store =
        rt.block_on(RedisStore::connect_with(&url, config().with_cache_ttl(Duration::ZERO), clock.clone()));
    let verifier = Verifier::new(sealer(&clock), store.unwrap());
    clock.advance(Duration::from_secs(1));
    let token = verifier.sealer().seal(&rt.block_on(verifier.login("alice", ())).unwrap()).unwrap();
    let result = pollster::block_on(verifier.open::<()>(&token));
    assert!(matches!(result, Err(VerifyError::Store(StoreError::Unavailable(_)))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_server_reaches_the_other_within_milliseconds() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let (a, b) = (server(&redis, &clock).await, server(&redis, &clock).await);
    clock.advance(Duration::from_secs(1));
    let mut slowest = Duration::ZERO;
    for round in 0..20 {
        let user = format!("user-{round}");
        let token = login(&a, &user).await;
        // B has it cached as valid.
        assert!(b.open::<()>(&token).await.is_ok());
        assert!(b.open::<()>(&token).await.is_ok());
        a.logout_everywhere(&user).await.unwrap();
        // A refuses at once; B within the propagation bound, by pub/sub, long before the cache TTL.
        assert!(matches!(a.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
        let took = within(Duration::from_millis(500), async || b.open::<()>(&token).await.is_err())
            .await
            .expect("B still accepted the token 500 ms after the revocation");
        slowest = slowest.max(took);
    }
    assert!(slowest < Duration::from_millis(100), "slowest propagation {slowest:?}");
}

#[tokio::test]
async fn a_lost_message_keeps_a_revoked_session_alive_no_longer_than_the_cache_ttl() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let b = server(&redis, &clock).await;
    clock.advance(Duration::from_secs(1));
    let token = login(&b, "alice").await;
    assert!(b.open::<()>(&token).await.is_ok()); // cached now
                                                 // A revocation that bypasses the store, so no message is published.
    assert_eq!(redis.cli(&["INCR", "sealed-session:user:alice"]), "1");
    clock.advance(Duration::from_millis(999));
    assert!(b.open::<()>(&token).await.is_ok(), "within the TTL the cached answer stands");
    clock.advance(Duration::from_millis(1));
    assert!(matches!(b.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_going_away_fails_closed_and_coming_back_recovers() {
    let mut redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let (a, b) = (server(&redis, &clock).await, server(&redis, &clock).await);
    clock.advance(Duration::from_secs(1));
    let token = login(&a, "alice").await;
    assert!(a.open::<()>(&token).await.is_ok() && b.open::<()>(&token).await.is_ok());

    redis.stop();
    for verifier in [&a, &b] {
        let refused = within(Duration::from_secs(3), async || {
            matches!(verifier.open::<()>(&token).await, Err(VerifyError::Store(_)))
        })
        .await;
        assert!(refused.is_some(), "a server accepted a session while Redis was down");
        let started = Instant::now();
        let err = verifier.open::<()>(&token).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2), "a check hung for {:?}", started.elapsed());
        assert!(
            matches!(err, VerifyError::Store(StoreError::Timeout(_) | StoreError::Unavailable(_))),
            "{err}"
        );
    }

    // Redis comes back empty (no persistence): a new generation, so the old
    // session is refused, and new logins work on both servers without rebuilding them.
    redis.restart();
    clock.advance(Duration::from_secs(1));
    for verifier in [&a, &b] {
        let answered = within(Duration::from_secs(5), async || {
            !matches!(verifier.open::<()>(&token).await, Err(VerifyError::Store(_)))
        })
        .await;
        assert!(answered.is_some(), "did not reconnect");
        assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))));
    }
    clock.advance(Duration::from_secs(1));
    let fresh = login(&a, "alice").await;
    assert!(a.open::<()>(&fresh).await.is_ok());
    assert!(b.open::<()>(&fresh).await.is_ok());
    assert!(a.store().wait_until_subscribed(Duration::from_secs(5)).await, "the subscription came back");
}

#[tokio::test]
async fn flushall_never_brings_a_revoked_session_back() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let verifier = server(&redis, &clock).await;
    clock.advance(Duration::from_secs(1));
    let token = login(&verifier, "alice").await;
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));

    assert_eq!(redis.cli(&["FLUSHALL"]), "OK");
    clock.advance(Duration::from_secs(1)); // past the cache TTL, too
    assert!(
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))),
        "a revoked token came back after FLUSHALL"
    );
    clock.advance(Duration::from_secs(1));
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok(), "a fresh login works after the flush");
}

#[tokio::test]
async fn stale_answers_are_an_explicit_opt_in() {
    let mut redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let config = config().with_stale_answers_for(Some(Duration::from_secs(30)));
    let store = RedisStore::connect_with(&redis.url(), config, clock.clone()).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
    let verifier = Verifier::new(sealer(&clock), store);
    clock.advance(Duration::from_secs(1));
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    redis.stop();
    clock.advance(Duration::from_secs(10));
    assert!(verifier.open::<()>(&token).await.is_ok(), "opted in: answered from 10 s old data");
    clock.advance(Duration::from_secs(21));
    assert!(
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Store(_))),
        "but never older than the bound"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_revoked_token_is_accepted_after_the_revocation_returned() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let verifier = server(&redis, &clock).await;
    clock.advance(Duration::from_secs(1));
    let token = login(&verifier, "alice").await;
    revocation_race::no_revoked_token_is_accepted_after_the_revocation_returned(verifier, "alice", token)
        .await;
}

#[tokio::test]
async fn logout_of_one_session_expires_with_the_session_plus_the_leeway() {
    let redis = RedisServer::start();
    let clock = ManualClock::at_unix(T0);
    let verifier = server(&redis, &clock).await;
    clock.advance(Duration::from_secs(1));
    let token = login(&verifier, "alice").await;
    let session = verifier.open::<()>(&token).await.unwrap().into_session();
    verifier.logout(&session).await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::Session))));
    let ttl: i64 =
        redis.cli(&["TTL", &format!("sealed-session:session:{}", session.id().to_hex())]).parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    // The entry outlives the session by the clock leeway (60 s), for servers whose clocks lag.
    let expected = session.expires_at().unwrap().unix_timestamp() + 60 - now;
    assert!((ttl - expected).abs() <= 2, "denylist entry TTL {ttl}, expected {expected} s");
}
