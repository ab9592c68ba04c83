//! The Redis store as production runs it, against real processes: TLS with
//! a throwaway CA, ACL users (with and without `CONFIG`), and a primary,
//! replica and sentinel on loopback through a failover.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use sealed_session::{Revocation, RevocationStore, Sealer, StoreError, SystemClock, Verifier, VerifyError};
use sealed_session_redis::{ConnectError, RedisConfig, RedisStore};
use sealed_session_testkit::redis::{acl_file, RedisOptions, RedisServer, Sentinel, TestCa};
use sealed_session_testkit::{keyring, unix_now, within, Logs};

fn config() -> RedisConfig {
    RedisConfig::default().with_timeout(Duration::from_millis(500))
}

/// A server on the system clock (Redis dates cutoffs; the two must agree).
async fn server(url: &str) -> Verifier<RedisStore> {
    let store = RedisStore::connect_with(url, config(), sealed_session::SystemClock).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await, "no subscription");
    Verifier::new(Sealer::builder(keyring(6)).build().unwrap(), store)
}

async fn login(verifier: &Verifier<RedisStore>, user: &str) -> String {
    verifier.sealer().seal(&verifier.login(user, ()).await.unwrap()).unwrap()
}

/// Logs in, logs out everywhere, and checks the refusal: the store works.
async fn round_trip(verifier: &Verifier<RedisStore>) {
    let token = login(verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User))));
}

/// A Redis server over TLS from a throwaway CA, whose one user is `app`
/// with the password `s3cret-pass`.
fn tls_server_with_an_acl_user() -> (TestCa, RedisServer) {
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let users = acl_file(dir.path(), &[("app", "s3cret-pass", "~* &* +@all")]);
    let options = RedisOptions::default().tls(&ca).args(&["--aclfile", users.to_str().unwrap()]);
    (ca, RedisServer::start_with(options))
}

#[tokio::test]
async fn tls_with_a_private_ca_and_an_acl_user() {
    let (ca, redis) = tls_server_with_an_acl_user();
    let port = redis.port();
    let ca_file = ca.ca_file();
    let url = format!("rediss://app:s3cret-pass@localhost:{port}/0?ca_file={}", ca_file.display());
    let verifier = server(&url).await;
    round_trip(&verifier).await;
    let shown = format!("{:?}", verifier.store());
    assert!(!shown.contains("s3cret"), "the password is not in Debug: {shown}");

    // The same through the configuration instead of the URL.
    let config = config().with_ca_file(&ca_file);
    let url = format!("rediss://app:s3cret-pass@localhost:{port}/0");
    assert!(RedisStore::connect_with(&url, config, sealed_session::SystemClock).await.is_ok());
}

#[tokio::test]
async fn tls_refuses_an_unknown_ca_plaintext_and_a_wrong_password() {
    let (ca, redis) = tls_server_with_an_acl_user();
    let port = redis.port();
    let connect =
        async |url: String| RedisStore::connect_with(&url, config(), sealed_session::SystemClock).await;

    // The system's roots do not know the throwaway CA: an on-path attacker's
    // certificate would be refused the same way.
    let unknown = connect(format!("rediss://app:s3cret-pass@localhost:{port}/0")).await;
    assert!(refused_for(&unknown, "UnknownIssuer"), "{unknown:?}");
    // Another CA than the server's.
    let other = TestCa::new();
    let wrong_ca =
        format!("rediss://app:s3cret-pass@localhost:{port}/0?ca_file={}", other.ca_file().display());
    let wrong_ca = connect(wrong_ca).await;
    // (The two CAs share a name: the signature gives the other one away.)
    assert!(refused_for(&wrong_ca, "invalid peer certificate"), "{wrong_ca:?}");
    // Plaintext to a TLS port.
    let plaintext = connect(format!("redis://app:s3cret-pass@127.0.0.1:{port}/0")).await;
    assert!(matches!(plaintext, Err(ConnectError::Redis(_))), "{plaintext:?}");
    // A wrong password, which the error does not repeat.
    let ca_file = ca.ca_file();
    let wrong =
        connect(format!("rediss://app:wrong-pass@localhost:{port}/0?ca_file={}", ca_file.display())).await;
    match wrong {
        Err(err @ ConnectError::Redis(_)) => assert!(!err.to_string().contains("wrong-pass"), "{err}"),
        other => panic!("expected an authentication error, got {other:?}"),
    }
    // A missing CA file is named.
    let missing = connect(format!("rediss://localhost:{port}/0?ca_file=/nonexistent/ca.pem")).await;
    assert!(
        matches!(&missing, Err(ConnectError::CaFile { path, .. }) if path.ends_with("ca.pem")),
        "{missing:?}"
    );
}

/// A certificate the trusted CA signed for another server is refused: the
/// name the URL gives must be one the certificate names (an attacker with
/// any certificate of the same CA could answer otherwise).
#[tokio::test]
async fn tls_refuses_a_certificate_for_another_name() {
    let connect = async |ca: &TestCa, redis: &RedisServer, host: &str| {
        let url = format!("rediss://{host}:{}/0?ca_file={}", redis.port(), ca.ca_file().display());
        RedisStore::connect_with(&url, config(), sealed_session::SystemClock).await
    };
    // A certificate for `localhost` alone: that name passes, the address
    // it resolves to does not.
    let ca = TestCa::for_names("DNS:localhost");
    let redis = RedisServer::start_with(RedisOptions::default().tls(&ca));
    assert!(connect(&ca, &redis, "localhost").await.is_ok());
    let refused = connect(&ca, &redis, "127.0.0.1").await;
    assert!(refused_for(&refused, "not valid for name"), "{refused:?}");
    // One for another server altogether.
    let ca = TestCa::for_names("DNS:other.test");
    let redis = RedisServer::start_with(RedisOptions::default().tls(&ca));
    let refused = connect(&ca, &redis, "localhost").await;
    assert!(refused_for(&refused, "not valid for name"), "{refused:?}");
}

/// Whether `result` is a connection refused by the TLS check for `cause`
/// (in rustls's words), not by any other error (a timeout, say).
fn refused_for<T>(result: &Result<T, ConnectError>, cause: &str) -> bool {
    matches!(result, Err(err @ ConnectError::Redis(_)) if format!("{err:?}").contains(cause))
}

/// An ACL user without `CONFIG` reads the eviction policy from `INFO`
/// (and it is `noeviction` here), not the persistence settings: those must
/// be asserted. Without `INFO` either, both must.
#[tokio::test]
async fn an_acl_user_without_config_is_refused_unless_what_it_cannot_read_is_asserted() {
    let dir = tempfile::tempdir().unwrap();
    let users = acl_file(
        dir.path(),
        &[("app", "pw", "~* &* +@all -config"), ("blind", "pw", "~* &* +@all -config -info")],
    );
    let redis =
        RedisServer::start_with(RedisOptions::default().args(&["--aclfile", users.to_str().unwrap()]));
    let url = format!("redis://app:pw@127.0.0.1:{}/0", redis.port());
    let refused = RedisStore::connect_with(&url, config(), sealed_session::SystemClock).await;
    assert!(matches!(refused, Err(ConnectError::DurabilityUnknown(_))), "{refused:?}");
    let verifier = server(&format!("{url}?assume_durable=true")).await;
    round_trip(&verifier).await;

    let blind = format!("redis://blind:pw@127.0.0.1:{}/0", redis.port());
    match RedisStore::connect_with(&blind, config(), sealed_session::SystemClock).await {
        Err(err @ ConnectError::EvictionPolicyUnknown(_)) => {
            assert!(err.to_string().contains("assume_noeviction=true"), "the error names the fix: {err}");
        }
        other => panic!("expected EvictionPolicyUnknown, got {:?}", other.map(drop)),
    }
    let half = RedisStore::connect_with(
        &format!("{blind}?assume_noeviction=true"),
        config(),
        sealed_session::SystemClock,
    )
    .await;
    assert!(matches!(half, Err(ConnectError::DurabilityUnknown(_))), "{half:?}");
    let verifier = server(&format!("{blind}?assume_noeviction=true&assume_durable=true")).await;
    round_trip(&verifier).await;
}

/// `assume_noeviction` covers a policy the store cannot read, not one it
/// can: where `CONFIG` is hidden, `INFO memory` still shows it (as managed
/// services do, whose default is `volatile-lru`), and an evicting one is
/// refused at the start and when an operator switches to it later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicting_policy_info_shows_is_refused_though_config_is_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let users = acl_file(dir.path(), &[("app", "pw", "~* &* +@all -config")]);
    let redis = RedisServer::start_with(RedisOptions::default().args(&[
        "--aclfile",
        users.to_str().unwrap(),
        "--maxmemory-policy",
        "volatile-lru",
    ]));
    let url =
        format!("redis://app:pw@127.0.0.1:{}/0?assume_noeviction=true&assume_durable=true", redis.port());
    let refused = RedisStore::connect_with(&url, config(), sealed_session::SystemClock).await;
    assert!(matches!(&refused, Err(ConnectError::EvictionPolicy(p)) if p == "volatile-lru"), "{refused:?}");

    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]), "OK");
    let config = config().with_policy_check_interval(Duration::from_millis(100));
    let store = RedisStore::connect_with(&url, config, sealed_session::SystemClock).await.unwrap();
    let verifier = Verifier::new(Sealer::builder(keyring(6)).build().unwrap(), store);
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    assert_eq!(redis.cli(&["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]), "OK");
    let untrusted = within(Duration::from_secs(5), async || {
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Store(StoreError::Untrusted(_))))
    });
    assert!(untrusted.await.is_some(), "an evicting policy switched on later was not noticed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_that_becomes_unreadable_fails_closed_and_says_why() {
    let logs = Logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let users = acl_file(dir.path(), &[("app", "pw", "~* &* +@all")]);
    let redis =
        RedisServer::start_with(RedisOptions::default().args(&["--aclfile", users.to_str().unwrap()]));
    let url = format!("redis://app:pw@127.0.0.1:{}/0", redis.port());
    let config = config().with_policy_check_interval(Duration::from_millis(100));
    let store = RedisStore::connect_with(&url, config, sealed_session::SystemClock).await.unwrap();
    assert!(store.wait_until_subscribed(Duration::from_secs(5)).await);
    let verifier = Verifier::new(Sealer::builder(keyring(6)).build().unwrap(), store);
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
    // An operator takes CONFIG away from the store's user: the eviction
    // policy still shows in INFO, the persistence settings no longer do.
    assert_eq!(redis.cli(&["ACL", "SETUSER", "app", "-config"]), "OK");
    let said = async || {
        !logs.lines_with(&["ERROR", "cannot read Redis persistence settings", &redis.log_label()]).is_empty()
    };
    assert!(within(Duration::from_secs(2), said).await.is_some(), "the log says why");
    let result = verifier.open::<()>(&token).await;
    assert!(matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_)))), "{result:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_survives_a_failover_and_one_no_replica_acknowledged_is_not_reported() {
    let mut primary = RedisServer::start();
    let replica = RedisServer::replica_of(&primary);
    let sentinel = Sentinel::start("sessions", &primary, Duration::from_millis(500));
    sentinel.wait_for_replicas("sessions", 1);
    let url = format!("redis+sentinel://127.0.0.1:{}/sessions", sentinel.port());
    let (a, b) = (server(&url).await, server(&url).await);
    assert_eq!(a.store().wait_replicas(), 1, "through Sentinel, revocations wait for one replica");

    let token = login(&a, "alice").await;
    let kept = login(&a, "bob").await;
    assert!(b.open::<()>(&token).await.is_ok());
    // Acknowledged by the replica before it returns.
    a.logout_everywhere("alice").await.unwrap();
    let session = a.open::<()>(&kept).await.unwrap().into_session();

    // The primary dies (SIGKILL); the sentinel promotes the replica.
    let old_port = primary.port();
    let killed = std::time::Instant::now();
    primary.stop();
    let promoted = sentinel.wait_for_failover("sessions", old_port, Duration::from_secs(30));
    assert_eq!(promoted, Some(replica.port()), "the sentinel did not promote the replica");

    // Both servers follow the failover; the revoked session stays refused on
    // each (never accepted in between), and bob's session lives on.
    for verifier in [&a, &b] {
        let followed = within(Duration::from_secs(20), async || match verifier.open::<()>(&token).await {
            Ok(_) => panic!("a revoked session opened during the failover"),
            Err(VerifyError::Revoked(Revocation::User)) => true,
            Err(_) => false,
        })
        .await;
        assert!(followed.is_some(), "a server did not follow the failover");
        println!(
            "answering again {:?} after the primary was killed (sentinel down-after 500 ms)",
            killed.elapsed()
        );
        assert!(verifier.open::<()>(&kept).await.is_ok(), "a live session was lost in the failover");
    }

    // The new primary has no replica: a revocation cannot be made safe, so
    // it is reported as failed, not as done.
    let until = unix_now() as u64 + 3600;
    match a.store().revoke_session(session.id(), until).await {
        Err(StoreError::Replication { acknowledged: 0, required: 1 }) => {}
        other => panic!("expected a replication error, got {other:?}"),
    }
    // New logins work on the new primary.
    let fresh = login(&b, "carol").await;
    assert!(a.open::<()>(&fresh).await.is_ok());
}

/// A failover to a replica whose eviction policy would drop revocations
/// (the replicas were not given the primary's settings): the store reads
/// the new primary's policy before it trusts it, refuses every session and
/// says why, rather than answer from a server that may forget a logout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_to_a_replica_that_evicts_refuses_every_session_and_says_why() {
    let logs = Logs::capture();
    let mut primary = RedisServer::start();
    let replica = RedisServer::replica_with(&primary, &["--maxmemory-policy", "allkeys-lru"]);
    let sentinel = Sentinel::start("evicting", &primary, Duration::from_millis(500));
    sentinel.wait_for_replicas("evicting", 1);
    let verifier = server(&format!("redis+sentinel://127.0.0.1:{}/evicting", sentinel.port())).await;
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());

    let old_port = primary.port();
    primary.stop();
    let promoted = sentinel.wait_for_failover("evicting", old_port, Duration::from_secs(30));
    assert_eq!(promoted, Some(replica.port()), "the sentinel did not promote the replica");
    let refused = within(Duration::from_secs(20), async || {
        let probe = verifier.sealer().seal(&sealed_session::Session::new(()).with_user("probe", 0)).unwrap();
        match verifier.open::<()>(&probe).await {
            Ok(_) => panic!("a session opened on a primary that evicts"),
            Err(VerifyError::Store(StoreError::Untrusted(_))) => true,
            Err(_) => false,
        }
    })
    .await;
    assert!(refused.is_some(), "the store never refused the evicting primary");
    assert!(verifier.open::<()>(&token).await.is_err(), "a session opened after the refusal");
    let said = logs.lines_with(&["ERROR", "allkeys-lru", &replica.log_label()]);
    assert!(!said.is_empty(), "the refusal went unsaid");
}

/// A replica of `primary`, a sentinel that watches it as `name` (down-after
/// 500 ms) and knows the replica, a server through the sentinel, and a
/// session of alice's that opens on it.
async fn behind_a_sentinel(
    primary: &RedisServer,
    name: &str,
) -> (RedisServer, Sentinel, Verifier<RedisStore>, String) {
    behind_sentinels(primary, name, &[]).await
}

/// [`behind_a_sentinel`], with the sentinels at `before` first in the
/// server's URL.
async fn behind_sentinels(
    primary: &RedisServer,
    name: &str,
    before: &[u16],
) -> (RedisServer, Sentinel, Verifier<RedisStore>, String) {
    let replica = RedisServer::replica_of(primary);
    let sentinel = Sentinel::start(name, primary, Duration::from_millis(500));
    sentinel.wait_for_replicas(name, 1);
    let sentinels: Vec<String> =
        before.iter().chain([&sentinel.port()]).map(|port| format!("127.0.0.1:{port}")).collect();
    let verifier = server(&format!("redis+sentinel://{}/{name}", sentinels.join(","))).await;
    let alice = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&alice).await.is_ok());
    (replica, sentinel, verifier, alice)
}

/// A sentinel on a host that hangs: it takes connections and never
/// answers. Its port.
fn silent_sentinel() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let held: Vec<_> = listener.incoming().collect();
        drop(held);
    });
    port
}

/// Through Sentinel the eviction policy is read on a timer of its own. A
/// sentinel that takes connections and never answers, first in the URL,
/// holds back every lookup of the primary by about a second (redis-rs
/// waits for its reply twice); counted against the policy's timer, each
/// lookup put the next read off by as much, and a read due every 2 s came
/// every 4 s or so (found by review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_sentinel_does_not_put_off_the_reads_of_the_eviction_policy() {
    let primary = RedisServer::start();
    let _replica = RedisServer::replica_of(&primary);
    let sentinel = Sentinel::start("slow", &primary, Duration::from_millis(500));
    sentinel.wait_for_replicas("slow", 1);
    let url = format!("redis+sentinel://127.0.0.1:{},127.0.0.1:{}/slow", silent_sentinel(), sentinel.port());
    let every = Duration::from_secs(2);
    let store = RedisStore::connect_with(&url, config().with_policy_check_interval(every), SystemClock);
    let store = store.await.unwrap();
    // Each read of the settings is a pipeline of six `CONFIG GET`s.
    let reads = || -> u64 {
        let stats = primary.cli(&["INFO", "commandstats"]);
        let calls = stats.lines().find(|line| line.starts_with("cmdstat_config|get:"));
        calls.and_then(|line| line.split("calls=").nth(1)?.split(',').next()?.parse().ok()).unwrap_or(0) / 6
    };
    let before = reads();
    tokio::time::sleep(Duration::from_secs(16)).await;
    let read = reads() - before;
    // Eight are due; with the lookups counted, about four were made.
    assert!(read >= 6, "{read} reads of the settings in 16 s, due every 2 s");
    drop(store);
}

/// A partition: the sentinel promotes the replica while the old primary
/// stays up and reachable, and cannot be told to step down (it refuses the
/// `CLIENT KILL` in the sentinel's reconfiguration, so the whole
/// transaction is refused). The store follows the new primary on its next
/// failed write, and its subscription must follow too: the old primary no
/// longer hears what is published on the new one. The first sentinel in
/// the URL hangs (its host is cut off): its silence, which holds back the
/// next sentinel's answer, must not keep the store on the old primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subscription_follows_a_failover_that_left_the_old_primary_up() {
    let old = RedisServer::start_with(RedisOptions::default().args(&["--rename-command", "CLIENT", ""]));
    let (new, sentinel, verifier, alice) = behind_sentinels(&old, "split", &[silent_sentinel()]).await;
    let url = format!("redis+sentinel://127.0.0.1:{}/split", sentinel.port());
    let channels = old.cli(&["PUBSUB", "CHANNELS"]);
    let channel = channels.lines().find(|c| !c.starts_with("__sentinel__")).unwrap().to_owned();
    let subscribers = |server: &RedisServer| server.cli(&["PUBSUB", "NUMSUB", &channel]);
    assert_eq!(subscribers(&old), format!("{channel}\n1"));

    // The sentinel takes a moment to read the replica's own state.
    let forced = within(Duration::from_secs(15), async || {
        sentinel.cli(&["SENTINEL", "FAILOVER", "split"]) == "OK" || {
            tokio::time::sleep(Duration::from_millis(200)).await;
            false
        }
    });
    assert!(forced.await.is_some(), "the sentinel would not fail over");
    let promoted = sentinel.wait_for_failover("split", old.port(), Duration::from_secs(30));
    assert_eq!(promoted, Some(new.port()));
    assert!(old.cli(&["ROLE"]).starts_with("master"), "the old primary stepped down: no partition");
    // The store asks the sentinels every second, so it follows though no
    // command of its failed (it only reads): its subscription moves, and a
    // revocation made on the new primary is seen, long before the 30 s
    // settings check.
    let moved = within(Duration::from_secs(5), async || subscribers(&new) == format!("{channel}\n1")).await;
    assert!(moved.is_some(), "the subscription stayed on the old primary");
    assert_eq!(subscribers(&old), format!("{channel}\n0"), "and left it");
    let no_replicas = config().with_wait_for_replicas(0, Duration::ZERO);
    let elsewhere = RedisStore::connect_with(&url, no_replicas, SystemClock).await.unwrap();
    Verifier::new(Sealer::builder(keyring(6)).build().unwrap(), elsewhere)
        .logout_everywhere("alice")
        .await
        .unwrap();
    let seen = within(Duration::from_secs(5), async || {
        matches!(verifier.open::<()>(&alice).await, Err(VerifyError::Revoked(Revocation::User)))
    });
    assert!(
        seen.await.is_some(),
        "a revocation on the new primary went unseen: {:?}",
        verifier.open::<()>(&alice).await
    );
}

/// Sentinel names a primary this server cannot connect to (a partition, a
/// TLS certificate that does not match it) while the old primary still
/// answers as one: its answers may miss revocations made on the new one,
/// so the store refuses sessions until it can follow, and says why. When
/// Sentinel names the old primary again, sessions open again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_this_server_cannot_reach_is_not_trusted_to_be_the_old_one() {
    let logs = Logs::capture();
    let primary = RedisServer::start();
    let (_replica, sentinel, verifier, alice) = behind_a_sentinel(&primary, "moved").await;

    // Nothing listens on the port Sentinel now names.
    let unreachable = sealed_session_testkit::free_port();
    let monitor = |port: u16| {
        assert_eq!(sentinel.cli(&["SENTINEL", "REMOVE", "moved"]), "OK");
        let port = port.to_string();
        assert_eq!(sentinel.cli(&["SENTINEL", "MONITOR", "moved", "127.0.0.1", &port, "1"]), "OK");
    };
    monitor(unreachable);
    let untrusted =
        |result: Result<_, VerifyError>| matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_))));
    let refused = within(Duration::from_secs(10), async || untrusted(verifier.open::<()>(&alice).await));
    assert!(refused.await.is_some(), "sessions opened from a primary Sentinel no longer names");
    let named = format!("Sentinel names 127.0.0.1:{unreachable} as the Redis primary");
    assert!(!logs.lines_with(&["ERROR", &named]).is_empty(), "and says why, at error");

    monitor(primary.port());
    let back = within(Duration::from_secs(10), async || verifier.open::<()>(&alice).await.is_ok());
    assert!(back.await.is_some(), "sessions were still refused once Sentinel named the old primary again");
}
