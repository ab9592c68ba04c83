//! The PostgreSQL store against a real server started by the test harness:
//! conformance, two servers on one database, a lost notification, the
//! database killed and restarted, dropped tables and lost rows, the
//! application's own pool, and bad settings.
//!
//! One server serves every test that does not kill it; each test uses
//! tables of its own (a prefix).
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::sync::LazyLock;
use std::time::Duration;

use sealed_session::{
    Clock, LoginError, ManualClock, Revocation, RevocationStore, Sealer, StoreError, SystemClock, Verifier,
    VerifyError,
};
use sealed_session_postgres::{PostgresOptions, PostgresSetupError, PostgresStore};
use sealed_session_testkit::postgres::PostgresServer;
use sealed_session_testkit::proxy::Proxy;
use sealed_session_testkit::{
    assert_a_newer_session_opens_past_a_cached_epoch, assert_an_unheard_revocation_lasts_the_cache_ttl,
    assert_entries_last_by_the_servers_clock, assert_revocations_propagate, clock_at_now, keyring,
    past_the_generation, sealer, unix_now, within,
};

static SHARED: LazyLock<PostgresServer> = LazyLock::new(PostgresServer::start);

fn options(prefix: &str) -> PostgresOptions {
    PostgresOptions::default().with_prefix(prefix).with_timeout(Duration::from_millis(500))
}

async fn pool(url: &str) -> sqlx::PgPool {
    sqlx::postgres::PgPoolOptions::new().max_connections(4).connect(url).await.unwrap()
}

async fn store(url: &str, prefix: &str, clock: impl sealed_session::Clock + 'static) -> PostgresStore {
    let store = PostgresStore::with_pool(pool(url).await, options(prefix), clock).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await, "no LISTEN");
    store
}

async fn server(url: &str, prefix: &str, clock: &ManualClock) -> Verifier<PostgresStore> {
    Verifier::new(sealer(8, clock), store(url, prefix, clock.clone()).await)
}

async fn login(verifier: &Verifier<PostgresStore>, user: &str) -> String {
    verifier.sealer().seal(&verifier.login(user, ()).await.unwrap()).unwrap()
}

/// The shared server's URL, and a manual clock read after it started (its
/// start can take seconds, and a clock behind the generation refuses logins).
fn started_then_clock() -> (String, ManualClock) {
    let url = SHARED.url();
    (url, clock_at_now())
}

/// A server on tables `prefix` with a manual clock, and a token of alice's
/// whose answer it has cached; then her epoch is raised behind the store's
/// back (no notification).
async fn alice_cached_then_revoked_unheard(prefix: &str) -> (ManualClock, Verifier<PostgresStore>, String) {
    let (url, clock) = started_then_clock();
    let verifier = server(&url, prefix, &clock).await;
    past_the_generation(&clock);
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok()); // cached now
    SHARED.psql(&format!("INSERT INTO {prefix}_user_epochs (user_id, epoch) VALUES ('alice', 1)"));
    (clock, verifier, token)
}

#[tokio::test]
async fn passes_the_conformance_suite() {
    let store = store(&SHARED.url(), "conformance", SystemClock).await;
    sealed_session::conformance::run(&store).await;
}

/// The conformance suite's check that began its read before a revocation,
/// with the read sent at the check's first poll: through a pool that tests
/// a connection before handing it out (sqlx's default) the read goes only
/// after the revocation, and the answer it caches is already the new one.
#[tokio::test]
async fn a_read_sent_before_a_revocation_is_never_cached() {
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .test_before_acquire(false)
        .connect(&SHARED.url())
        .await
        .unwrap();
    let store = PostgresStore::with_pool(pool, options("read_before"), SystemClock).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await, "no LISTEN");
    sealed_session_testkit::assert_reads_before_revocations_are_never_cached(&store).await;
}

/// A store made in one runtime and kept after that runtime shut down (its
/// listener task dropped with it) no longer takes its cache for fresh: no
/// one hears the notifications that would invalidate it.
#[test]
fn a_listener_dropped_with_its_runtime_stops_the_cache() {
    let first = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let store = first.block_on(store(&SHARED.url(), "dropped_listener", SystemClock));
    assert!(store.is_listening());
    drop(first);
    assert!(!store.is_listening(), "a dropped listener left the cache in use");
}

#[tokio::test]
async fn passes_the_registry_conformance_suite() {
    let store = store(&SHARED.url(), "registry", SystemClock).await;
    sealed_session::conformance::run_registry(&store).await;
    // The records are rows of the store's own table.
    let rows = SHARED.psql("SELECT count(*) > 0 FROM registry_sessions");
    assert_eq!(rows, "t");
}

/// A cutoff ahead of the database's time (written by hand here: one a
/// caller cannot set, as after the database's clock stepped back) is never
/// lowered by a later global logout.
#[tokio::test]
async fn a_cutoff_ahead_of_the_stores_time_is_never_lowered() {
    let (url, clock) = started_then_clock();
    let store = store(&url, "cutoff_ahead", clock).await;
    let ahead = u64::try_from(unix_now()).unwrap() + 3600;
    SHARED.psql(&format!(
        "INSERT INTO cutoff_ahead_meta (key, value) VALUES ('revoked_through', {ahead})
         ON CONFLICT (key) DO UPDATE SET value = {ahead}"
    ));
    assert_eq!(store.revoke_all(0).await.unwrap(), ahead);
    assert_eq!(store.revoke_all(ahead - 3600).await.unwrap(), ahead);
    assert_eq!(
        SHARED.psql("SELECT value FROM cutoff_ahead_meta WHERE key = 'revoked_through'"),
        ahead.to_string()
    );
}

#[tokio::test]
async fn connecting_by_url_creates_the_tables() {
    let url = SHARED.url();
    let store = PostgresStore::connect(&url).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await);
    let tables = SHARED.psql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'sealed\\_session\\_%'");
    assert_eq!(tables, "4");
    let sql = PostgresStore::migration_sql("app").unwrap();
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS app_denied"), "{sql}");
    assert_eq!(PostgresStore::migration_sql("App; DROP"), None);
}

#[tokio::test]
async fn bad_settings_are_errors() {
    assert!(matches!(PostgresStore::connect("redis://x").await, Err(PostgresSetupError::Url)));
    let closed = sealed_session_testkit::free_port();
    let err = PostgresStore::connect(&format!("postgres://postgres:hunter2@127.0.0.1:{closed}/x"))
        .await
        .unwrap_err();
    assert!(matches!(err, PostgresSetupError::Connect(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    let result =
        PostgresStore::with_pool(pool(&SHARED.url()).await, options("Bad-Prefix"), SystemClock).await;
    assert!(matches!(result, Err(PostgresSetupError::Prefix(_))), "{result:?}");
    // Without the tables and without permission to create them.
    let missing = options("not_created").with_create_tables(false);
    let result = PostgresStore::with_pool(pool(&SHARED.url()).await, missing, SystemClock).await;
    assert!(matches!(result, Err(PostgresSetupError::Generation(_))), "{result:?}");
}

#[tokio::test]
async fn a_database_that_may_lose_commits_in_a_crash_is_refused() {
    let connect: sqlx::postgres::PgConnectOptions = SHARED.url().parse().unwrap();
    let lossy = connect.clone().options([("synchronous_commit", "off")]);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(lossy).await.unwrap();
    match PostgresStore::with_pool(pool, options("lossy"), SystemClock).await {
        Err(err @ PostgresSetupError::NotDurable { .. }) => {
            assert!(err.to_string().contains("synchronous_commit = off"), "{err}");
        }
        other => panic!("expected NotDurable, got {other:?}"),
    }
    for setting in ["on", "local", "remote_write"] {
        let durable = connect.clone().options([("synchronous_commit", setting)]);
        let pool =
            sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(durable).await.unwrap();
        assert!(PostgresStore::with_pool(pool, options("lossy"), SystemClock).await.is_ok(), "{setting}");
    }
}

/// Every revocation raises `synchronous_commit` for its own transaction, so
/// a setting turned `off` after the store started (`ALTER SYSTEM` here; a
/// shared pool's `SET`, `ALTER ROLE` alike) does not make revocations that
/// a crash could lose. Made visible with a synchronous standby that never
/// connects: a commit at `on` waits for it (and the store times out), one
/// at `off` returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_commit_durably_when_the_database_is_made_lossy_after_the_start() {
    let own = PostgresServer::start();
    // A store for each revocation: a connection left waiting for the
    // standby delays the next statement on it whatever that statement does.
    let mut stores = Vec::new();
    for _ in 0..5 {
        let store = store(&own.url(), "lossy_later", SystemClock).await;
        assert!(store.revoke_user("alice").await.is_ok());
        stores.push(store);
    }

    own.psql("ALTER SYSTEM SET synchronous_commit = off");
    let pool = pool(&own.url()).await;
    // A revocation left waiting holds the lock every `NOTIFY` takes at
    // commit, so the standby is required for one revocation at a time.
    let require_standby = async |name: &str| {
        own.psql(&format!("ALTER SYSTEM SET synchronous_standby_names = '{name}'"));
        own.psql("SELECT pg_reload_conf()");
        let applied = within(Duration::from_secs(5), async || {
            let settings: (String, String) = sqlx::query_as(
                "SELECT current_setting('synchronous_commit'), current_setting('synchronous_standby_names')",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            settings == ("off".to_owned(), name.to_owned())
        });
        assert!(applied.await.is_some(), "the settings did not take effect");
    };

    // The statements waiting for a synchronous standby.
    let waiting = async || -> Vec<String> {
        sqlx::query_scalar("SELECT query FROM pg_stat_activity WHERE wait_event = 'SyncRep'")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    let far = unix_now() as u64 + 3600;
    let id = || sealed_session::Session::new(()).id();
    for (i, what) in
        ["revoke_user", "revoke_session", "revoke_session_once", "revoke_all"].into_iter().enumerate()
    {
        require_standby("never_connects").await;
        // Other commits do not wait.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE TABLE app_{i} (x int)")))
            .execute(&pool)
            .await
            .unwrap();
        let result = match what {
            "revoke_user" => stores[i].revoke_user("bob").await.map(drop),
            "revoke_session" => stores[i].revoke_session(id(), far).await,
            "revoke_session_once" => stores[i].revoke_session_once(id(), far).await.map(drop),
            _ => stores[i].revoke_all(unix_now() as u64).await.map(drop),
        };
        assert!(
            matches!(result, Err(StoreError::Timeout(_))),
            "{what} did not wait for its commit: {result:?}"
        );
        // It timed out waiting for the standby, not for anything else (the
        // statement's text as `pg_stat_activity` keeps it: its first 1 KiB).
        let statements = waiting().await;
        assert!(statements.len() == 1 && statements[0].contains("lossy_later_"), "{what}: {statements:?}");
        require_standby("").await;
        let released = within(Duration::from_secs(5), async || waiting().await.is_empty()).await;
        assert!(released.is_some(), "{what} still waits for the standby");
    }
    let done = within(Duration::from_secs(5), async || stores[4].revoke_user("carol").await.is_ok()).await;
    assert!(done.is_some(), "revocations did not resume once the standby requirement was lifted");
}

/// `fsync` turned off by a reload while the store runs (as for a bulk
/// load): every check and login fails closed, from the cache too, until it
/// is on again. A revocation meanwhile is written but fails: a crash could
/// lose it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fsync_turned_off_after_the_start_refuses_every_session_until_it_is_on_again() {
    let own = PostgresServer::start();
    // Never advanced: an answer stays in the cache until it is emptied.
    let clock = clock_at_now();
    let verifier = server(&own.url(), "fsync_later", &clock).await;
    // Tables of their own, for a logout of everyone.
    let everyone = store(&own.url(), "fsync_everyone", SystemClock).await;
    // Past the generation the new tables began with (the database's second).
    past_the_generation(&clock);
    let cached = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&cached).await.is_ok());
    let unread = login(&verifier, "bob").await;
    let untrusted =
        |result: Result<_, VerifyError>| matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_))));

    own.psql("ALTER SYSTEM SET fsync = off");
    own.psql("SELECT pg_reload_conf()");
    // Each probe a user never checked before: a read that came before a
    // connection applied the reload is cached, and this clock never ages it.
    let probes = std::sync::atomic::AtomicU32::new(0);
    let refused = within(Duration::from_secs(5), async || {
        let n = probes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let probe = sealed_session::Session::new(()).with_user(format!("probe{n}"), 0);
        untrusted(verifier.open::<()>(&verifier.sealer().seal(&probe).unwrap()).await)
    });
    assert!(refused.await.is_some(), "a session was accepted while fsync was off");
    // Nor does a store start on it.
    let started = PostgresStore::with_pool(pool(&own.url()).await, options("fsync_new"), SystemClock).await;
    assert!(
        matches!(&started, Err(PostgresSetupError::NotDurable { fsync, .. }) if fsync == "off"),
        "{:?}",
        started.map(drop)
    );
    // The read that found fsync off emptied the cache: no check answers from it.
    assert!(untrusted(verifier.open::<()>(&cached).await), "a cached answer was used while fsync was off");
    let login = verifier.login("carol", ()).await;
    assert!(matches!(login, Err(LoginError::Store(StoreError::Untrusted(_)))), "{login:?}");
    let store = verifier.store();
    let (denied, once) = (sealed_session::Session::new(()).id(), sealed_session::Session::new(()).id());
    let far = unix_now() as u64 + 3600;
    let revocations = [
        ("revoke_user", store.revoke_user("dave").await.map(drop)),
        ("revoke_session", store.revoke_session(denied, far).await),
        ("revoke_session_once", store.revoke_session_once(once, far).await.map(drop)),
        ("revoke_all", everyone.revoke_all(unix_now() as u64).await.map(drop)),
    ];
    for (what, result) in revocations {
        assert!(matches!(result, Err(StoreError::Untrusted(_))), "{what} while fsync was off: {result:?}");
    }

    own.psql("ALTER SYSTEM SET fsync = on");
    own.psql("SELECT pg_reload_conf()");
    let back = within(Duration::from_secs(5), async || verifier.open::<()>(&cached).await.is_ok());
    assert!(back.await.is_some(), "sessions were still refused once fsync was on again");
    assert!(verifier.open::<()>(&unread).await.is_ok());
    // Each revocation that failed was written all the same.
    assert_eq!(store.login_state("dave").await.unwrap().user_epoch, 1);
    for session in [denied, once] {
        assert!(store.state(None, session).await.unwrap().session_revoked);
    }
    let cutoff: Option<i64> =
        sqlx::query_scalar("SELECT value FROM fsync_everyone_meta WHERE key = 'revoked_through'")
            .fetch_optional(&pool(&own.url()).await)
            .await
            .unwrap();
    assert!(cutoff.is_some(), "the logout of everyone was not written");
}

/// A URL that needs the TLS this build lacks, or that carries a parameter
/// sqlx would log and ignore (a secret one), is refused before any
/// connection is tried, and the parameter's value is not repeated.
#[tokio::test]
async fn urls_the_store_would_not_use_as_meant_are_refused_at_connect() {
    let refused = |url: &'static str| async move {
        match PostgresStore::connect(url).await {
            Ok(_) => panic!("{url} was accepted"),
            Err(err) => err,
        }
    };
    let tls = refused("postgres://app@127.0.0.1:1/x?sslmode=require").await;
    assert!(matches!(tls, PostgresSetupError::TlsUnavailable), "{tls:?}");
    let secret = refused("postgres://app@127.0.0.1:1/x?sslpassword=hunter2").await;
    assert!(matches!(secret, PostgresSetupError::UrlParameter), "{secret:?}");
    assert!(!format!("{secret} {secret:?}").contains("hunter2"), "{secret}");
}

/// A schema put in front of the one that holds the tables (one named after
/// the role, say, which `"$user", public` puts first) would have a new
/// server create a second, empty set of tables there, while servers already
/// running keep to the first: revocations written to one set would not be
/// seen through the other. The new server refuses to start instead.
#[tokio::test]
async fn a_server_that_would_create_a_second_set_of_tables_refuses_to_start() {
    let url = SHARED.url();
    let first = store(&url, "split", SystemClock).await;
    SHARED.psql("CREATE SCHEMA split_tenant");
    let connect: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let in_front = connect.options([("search_path", "split_tenant, public")]);
    let pool = sqlx::postgres::PgPoolOptions::new().max_connections(2).connect_with(in_front).await.unwrap();
    match PostgresStore::with_pool(pool.clone(), options("split"), SystemClock).await {
        Err(err @ PostgresSetupError::SchemaMismatch { .. }) => {
            assert!(
                err.to_string().contains("in schema public, but") && err.to_string().contains("split_tenant")
            );
        }
        other => panic!("expected SchemaMismatch, got {other:?}"),
    }
    let created: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_tables WHERE schemaname = 'split_tenant'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(created, 0, "a second set of tables was created");
    // Without creating tables, its statements find the first set.
    let existing = options("split").with_create_tables(false);
    let second = PostgresStore::with_pool(pool, existing, SystemClock).await.unwrap();
    first.revoke_user("alice").await.unwrap();
    assert_eq!(second.login_state("alice").await.unwrap().user_epoch, 1);
}

/// A `LISTEN` connection the database closes (an administrator's
/// `pg_terminate_backend`, an idle timeout) is reported at once: sqlx would
/// open a new one on the next call without a word, and notifications sent
/// in between would be lost while the cache kept answering. Here no clock
/// moves, so only that report can end a cached answer.
#[tokio::test]
async fn a_listen_connection_the_database_closes_stops_the_cache_at_once() {
    let (_clock, verifier, token) = alice_cached_then_revoked_unheard("terminated").await;
    assert!(verifier.open::<()>(&token).await.is_ok(), "answered from the cache");
    let killed = SHARED.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE query LIKE 'LISTEN%terminated_revocations%'",
    );
    assert_eq!(killed, "1");
    let refused = within(Duration::from_secs(5), async || {
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::User)))
    });
    assert!(refused.await.is_some(), "the cache still answered after its LISTEN connection was closed");
}

/// A crash empties an `UNLOGGED` table, while the generation, in another
/// table, would vouch for what is left: a store refuses to start on one,
/// and a check that finds a table made so fails closed, until it is
/// logged again.
#[tokio::test]
async fn unlogged_revocation_tables_are_refused() {
    let (url, clock) = started_then_clock();
    let verifier = server(&url, "unlogged", &clock).await;
    past_the_generation(&clock);
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok()); // cached now
    let untrusted =
        |result: Result<_, VerifyError>| matches!(result, Err(VerifyError::Store(StoreError::Untrusted(_))));

    SHARED.psql("ALTER TABLE unlogged_denied SET UNLOGGED");
    let probe = verifier.sealer().seal(&sealed_session::Session::new(()).with_user("probe", 0)).unwrap();
    assert!(untrusted(verifier.open::<()>(&probe).await), "a check read an unlogged table and trusted it");
    assert!(untrusted(verifier.open::<()>(&token).await), "the cache was not emptied");
    let revoked = verifier.store().revoke_user("bob").await;
    assert!(matches!(revoked, Err(StoreError::Untrusted(_))), "{revoked:?}");
    let refused_at_setup = async |table: &str| match PostgresStore::with_pool(
        pool(&url).await,
        options("unlogged"),
        SystemClock,
    )
    .await
    {
        Err(err @ PostgresSetupError::Unlogged { .. }) => {
            assert!(err.to_string().contains(&format!("ALTER TABLE {table} SET LOGGED")), "{err}");
        }
        other => panic!("expected Unlogged, got {other:?}"),
    };
    refused_at_setup("unlogged_denied").await;

    SHARED.psql("ALTER TABLE unlogged_denied SET LOGGED");
    let back = within(Duration::from_secs(5), async || verifier.open::<()>(&token).await.is_ok());
    assert!(back.await.is_some(), "sessions were still refused once the table was logged again");

    // Every other table of the store likewise, the session registry's too:
    // emptied by a crash, it would leave live sessions unlisted and
    // uncounted by a session limit. Logins are refused as well.
    for table in ["unlogged_user_epochs", "unlogged_meta", "unlogged_sessions"] {
        SHARED.psql(&format!("ALTER TABLE {table} SET UNLOGGED"));
        // A session not checked yet: a check that reads the store.
        let probe = verifier.sealer().seal(&sealed_session::Session::new(()).with_user("probe", 0)).unwrap();
        assert!(untrusted(verifier.open::<()>(&probe).await), "a check trusted an unlogged {table}");
        let login = verifier.login("carol", ()).await;
        assert!(
            matches!(login, Err(LoginError::Store(StoreError::Untrusted(_)))),
            "{table}: {:?}",
            login.map(drop)
        );
        refused_at_setup(table).await;
        SHARED.psql(&format!("ALTER TABLE {table} SET LOGGED"));
        let back = within(Duration::from_secs(5), async || verifier.open::<()>(&probe).await.is_ok());
        assert!(back.await.is_some(), "sessions were still refused once {table} was logged again");
    }
}

/// A failover, or an address that moved, can send the pool's new
/// connections to a standby, whose data lags the primary's revocations by
/// any time (here its replay is paused). The store refuses to start on a
/// standby, and a check that reads one fails closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_is_refused_at_the_start_and_when_the_pool_reaches_one() {
    let primary = PostgresServer::start();
    let proxy = Proxy::to(primary.port());
    let clock = clock_at_now();
    let verifier =
        server(&format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port()), "standby", &clock).await;
    past_the_generation(&clock);
    let alice = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&alice).await.is_ok());

    let standby = PostgresServer::standby_of(&primary);
    let refused = PostgresStore::with_pool(pool(&standby.url()).await, options("standby"), SystemClock).await;
    assert!(matches!(refused, Err(PostgresSetupError::Standby)), "{refused:?}");
    let replicated = within(Duration::from_secs(10), async || {
        standby.psql("SELECT count(*) FROM standby_meta WHERE key = 'generation'") == "1"
    });
    assert!(replicated.await.is_some(), "the standby never had the store's tables");
    // Alice's epoch stays 0 on the standby, whatever the primary says.
    standby.psql("SELECT pg_wal_replay_pause()");
    verifier.logout_everywhere("alice").await.unwrap();
    assert!(verifier.open::<()>(&alice).await.is_err());

    // The pool's new connections reach the standby.
    proxy.retarget(standby.port());
    primary.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'",
    );
    assert_refused_as_untrusted(&verifier, &alice, "the standby").await;
    let login = verifier.login("bob", ()).await;
    assert!(matches!(login, Err(LoginError::Store(StoreError::Untrusted(_)))), "{login:?}");
}

/// An old primary fenced after a failover (`default_transaction_read_only
/// = on`) is not in recovery, yet takes no revocations and its data may lag
/// the new primary's: it is refused as a standby is, at the start and when
/// the pool's new connections reach it (libpq's `target_session_attrs =
/// read-write` checks both). Said once at `error`, however many checks it
/// refuses.
#[tokio::test]
async fn a_read_only_server_is_refused_as_a_standby_is() {
    let logs = sealed_session_testkit::Logs::capture();
    SHARED.psql("CREATE DATABASE fenced");
    let url = format!("postgres://postgres@127.0.0.1:{}/fenced", SHARED.port());
    let clock = clock_at_now();
    let verifier = server(&url, "fenced", &clock).await;
    past_the_generation(&clock);
    assert!(verifier.open::<()>(&login(&verifier, "alice").await).await.is_ok());
    // Never checked, so never cached: its check reads the database.
    let bob = login(&verifier, "bob").await;

    SHARED.psql("ALTER DATABASE fenced SET default_transaction_read_only = on");
    let refused = PostgresStore::with_pool(pool(&url).await, options("fenced"), SystemClock).await;
    assert!(matches!(refused, Err(PostgresSetupError::Standby)), "{refused:?}");
    // The store's connections open again, read-only now, once the old ones
    // are gone.
    end_backends("datname = 'fenced'").await;
    assert_refused_as_untrusted(&verifier, &bob, "a read-only server").await;
    for _ in 0..3 {
        assert!(verifier.open::<()>(&bob).await.is_err());
    }
    // A revocation refused there says why, not that the database is down.
    let logout = verifier.logout_everywhere("carol").await;
    assert!(matches!(logout, Err(StoreError::Untrusted(_))), "{logout:?}");
    let write = logs.lines_with(&["ERROR", "a write was refused", "prefix=\"fenced\""]);
    assert_eq!(write.len(), 1, "{write:#?}");
    let said = logs.lines_with(&["ERROR", "reads a standby or a read-only server", "prefix=\"fenced\""]);
    assert_eq!(said.len(), 1, "{said:#?}");
}

/// A server found read-only (or a standby) empties the cache: a session
/// checked just before is checked again, and refused, though the `LISTEN`
/// connection, still on the server it was, keeps the cache in use.
#[tokio::test]
async fn finding_a_read_only_server_empties_the_cache() {
    SHARED.psql("CREATE DATABASE fenced_cache");
    let url = format!("postgres://postgres@127.0.0.1:{}/fenced_cache", SHARED.port());
    let clock = clock_at_now();
    let verifier = server(&url, "fenced_cache", &clock).await;
    past_the_generation(&clock);
    let alice = login(&verifier, "alice").await;
    // Cached for a second of the store's clock, which stands still.
    assert!(verifier.open::<()>(&alice).await.is_ok());
    let bob = login(&verifier, "bob").await;

    SHARED.psql("ALTER DATABASE fenced_cache SET default_transaction_read_only = on");
    // The pool's connections open again, read-only; the LISTEN one stays.
    end_backends("datname = 'fenced_cache' AND query NOT LIKE 'LISTEN%'").await;
    assert_refused_as_untrusted(&verifier, &bob, "a read-only server").await;
    assert!(verifier.store().is_listening(), "the LISTEN connection still keeps the cache in use");
    let again = verifier.open::<()>(&alice).await;
    assert!(matches!(again, Err(VerifyError::Store(StoreError::Untrusted(_)))), "{again:?}");
}

/// Ends the shared server's backends that `filter` (a condition on
/// `pg_stat_activity`) names, and waits until they are gone.
async fn end_backends(filter: &str) {
    let old = SHARED.psql(&format!("SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE {filter}"));
    SHARED
        .psql(&format!("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE pid IN ({old})"));
    let gone = within(Duration::from_secs(10), async || {
        SHARED.psql(&format!("SELECT count(*) FROM pg_stat_activity WHERE pid IN ({old})")) == "0"
    });
    assert!(gone.await.is_some(), "the backends where {filter} were not ended");
}

/// Within 10 s `verifier`'s checks of `token`, which must not open
/// meanwhile, fail closed (`Untrusted`), once its connections reach
/// `server` (a standby, say).
async fn assert_refused_as_untrusted(verifier: &Verifier<PostgresStore>, token: &str, server: &str) {
    let mut opened = false;
    let untrusted = within(Duration::from_secs(10), async || match verifier.open::<()>(token).await {
        Ok(_) => {
            opened = true;
            false
        }
        Err(err) => matches!(err, VerifyError::Store(StoreError::Untrusted(_))),
    })
    .await;
    assert!(!opened, "a session opened from {server}");
    assert!(untrusted.is_some(), "a check that read {server} did not fail closed");
}

/// The longest user ID a login accepts is keyed, revoked and recorded like
/// any other (PostgreSQL's index entries hold at most about 2.7 KB: a
/// longer ID could sign in and never be logged out).
#[tokio::test]
async fn the_longest_user_id_is_logged_out_and_recorded() {
    use sealed_session::registry::SessionRegistry;
    let store = store(&SHARED.url(), "long_ids", SystemClock).await;
    // Random, so that nothing compresses it below the index's limit.
    let mut bytes = [0u8; sealed_session::MAX_USER_ID_LEN / 2];
    for chunk in bytes.chunks_mut(16) {
        chunk.copy_from_slice(&sealed_session::Session::new(()).id().as_bytes()[..chunk.len()]);
    }
    let user: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(user.len(), sealed_session::MAX_USER_ID_LEN);
    assert_eq!(store.revoke_user(&user).await.unwrap(), 1);
    assert_eq!(store.login_state(&user).await.unwrap().user_epoch, 1);
    let now = unix_now().cast_unsigned();
    let record = live_record(&user, 1, now);
    store.record(&record).await.unwrap();
    assert_eq!(store.list(&user, now).await.unwrap(), [record]);
}

/// A registry record of a new session of `user` under `epoch`, begun at
/// `now` and live for an hour.
fn live_record(user: &str, epoch: u64, now: u64) -> sealed_session::SessionRecord {
    sealed_session::SessionRecord {
        id: sealed_session::Session::new(()).id(),
        user_id: user.to_owned(),
        epoch,
        created_at: now,
        last_seen: now,
        expires_at: now + 3600,
        user_agent: "Chrome on Linux".to_owned(),
        remembered: false,
        device_bound: false,
    }
}

#[tokio::test]
async fn a_revocation_drops_expired_entries_without_waiting_for_another_writer() {
    let store = store(&SHARED.url(), "purge", SystemClock).await;
    let expired = |byte: &str| format!("decode(repeat('{byte}', 16), 'hex')");
    // Two entries that expired long ago, and one an hour ago (by the
    // database's clock): that one is kept a day, in case the clock jumped
    // ahead and will be put back.
    SHARED.psql(&format!(
        "INSERT INTO purge_denied (session_id, expires_at) VALUES ({}, 1), ({}, 1),
           ({}, floor(extract(epoch from clock_timestamp()))::bigint - 3600)",
        expired("00"),
        expired("01"),
        expired("02")
    ));
    // Another writer holds one expired entry (its own revocation of it is
    // under way).
    let other = pool(&SHARED.url()).await;
    let mut held = other.begin().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT 1 FROM purge_denied WHERE session_id = {} FOR UPDATE",
        expired("00")
    )))
    .execute(&mut *held)
    .await
    .unwrap();
    let until = unix_now() as u64 + 3600;
    let live = sealed_session::Session::new(()).id();
    store.revoke_session(live, until).await.expect("a revocation must not wait for another writer's entry");
    let left = || SHARED.psql("SELECT count(*) FROM purge_denied WHERE expires_at = 1");
    assert_eq!(left(), "1", "the free expired entry is dropped, the held one left");
    held.rollback().await.unwrap();
    assert!(store.revoke_session_once(sealed_session::Session::new(()).id(), until).await.unwrap());
    assert_eq!(left(), "0", "and dropped by the next revocation");
    assert!(store.state(None, live).await.unwrap().session_revoked, "a live entry is kept");
    let recent =
        SHARED.psql(&format!("SELECT count(*) FROM purge_denied WHERE session_id = {}", expired("02")));
    assert_eq!(recent, "1", "an entry that expired an hour ago is kept a day");
}

/// After a quiet spell many entries may have expired at once: one
/// revocation deletes at most 1,000 of them (all at once could outlast the
/// store's timeout, and fail every logout), the next ones the rest.
#[tokio::test]
async fn expired_entries_are_dropped_in_batches() {
    let store = store(&SHARED.url(), "batch", SystemClock).await;
    SHARED.psql(
        "INSERT INTO batch_denied (session_id, expires_at)
         SELECT decode(lpad(to_hex(i), 32, '0'), 'hex'), 1 FROM generate_series(1, 1500) AS i",
    );
    let left = || SHARED.psql("SELECT count(*) FROM batch_denied WHERE expires_at = 1");
    let until = unix_now() as u64 + 3600;
    store.revoke_session(sealed_session::Session::new(()).id(), until).await.unwrap();
    assert_eq!(left(), "500");
    assert!(store.revoke_session_once(sealed_session::Session::new(()).id(), until).await.unwrap());
    assert_eq!(left(), "0");
}

/// A database clock ahead of the application servers' (here by an hour,
/// far past the 60 s leeway) must neither refuse the logout of a session
/// that still opens for them nor take its entry for expired, which would
/// let a one-time token (a DBSC challenge) be used again.
#[tokio::test]
async fn a_database_clock_ahead_of_the_servers_refuses_no_logout_and_reuses_no_entry() {
    let clock = ManualClock::at_unix(unix_now() - 3600);
    let store = store(&SHARED.url(), "ahead", clock.clone()).await;
    let now = u64::try_from(clock.unix_now()).unwrap();
    for id in assert_entries_last_by_the_servers_clock(&store, now).await {
        let kept = SHARED.psql(&format!(
            "SELECT expires_at FROM ahead_denied WHERE session_id = '\\x{}'::bytea",
            id.to_hex()
        ));
        assert_eq!(
            kept.trim(),
            (now + 600).to_string(),
            "entry kept until {kept}, not the server's now + 600"
        );
    }
}

#[tokio::test]
async fn expired_records_of_a_user_who_never_comes_back_are_deleted() {
    use sealed_session::SessionRegistry;
    let store = store(&SHARED.url(), "records", SystemClock).await;
    // Records of users who never sign in again: one expired long ago, one
    // not, and one an hour ago (by this server's clock): that one is kept a
    // day, in case the clock jumped ahead and other servers' is right.
    let now = unix_now() as u64;
    SHARED.psql(&format!(
        "INSERT INTO records_sessions VALUES
           ('gone', decode(repeat('00', 16), 'hex'), 0, 1, 1, 2, 'Firefox on Linux', false, false),
           ('kept', decode(repeat('01', 16), 'hex'), 0, 1, 1, 9000000000, 'Firefox on Linux', false, false),
           ('lately', decode(repeat('02', 16), 'hex'), 0, 1, 1, {}, 'Firefox on Linux', false, false)",
        now - 3600
    ));
    let record = live_record("other", 0, now);
    SessionRegistry::record(&store, &record).await.unwrap();
    let left = SHARED.psql("SELECT string_agg(user_id, ',' ORDER BY user_id) FROM records_sessions");
    assert_eq!(left, "kept,lately,other", "another user's write deletes the records expired a day ago");
}

#[test]
fn outside_a_tokio_runtime_calls_fail_closed_instead_of_panicking() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(store(&SHARED.url(), "outside", SystemClock));
    let state = futures_lite(sealed_session::RevocationStore::state(
        &store,
        Some("alice"),
        sealed_session::Session::new(()).id(),
    ));
    assert!(matches!(state, Err(StoreError::Unavailable(_))), "{state:?}");
}

/// Polls a future to completion on this thread, with no runtime.
fn futures_lite<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_on_one_server_reaches_the_other_by_its_messages() {
    let url = SHARED.url();
    // Past the generation, then never advanced: only a notification ends a
    // cached answer.
    let clock = clock_at_now();
    let (a, b) = (server(&url, "propagation", &clock).await, server(&url, "propagation", &clock).await);
    past_the_generation(&clock);
    let slowest = assert_revocations_propagate(&a, &b).await;
    println!("slowest propagation {slowest:?}");
}

#[tokio::test]
async fn a_lost_notification_keeps_a_revoked_session_alive_no_longer_than_the_cache_ttl() {
    let (clock, verifier, token) = alice_cached_then_revoked_unheard("lost").await;
    assert_an_unheard_revocation_lasts_the_cache_ttl(&clock, &verifier, &token).await;
}

/// `assert_a_newer_session_opens_past_a_cached_epoch`: a notification not
/// here yet.
#[tokio::test]
async fn a_session_newer_than_the_cached_epoch_opens() {
    let (url, clock) = started_then_clock();
    let (b, other) = (server(&url, "newer", &clock).await, server(&url, "newer", &clock).await);
    past_the_generation(&clock);
    let bump = || SHARED.psql("INSERT INTO newer_user_epochs (user_id, epoch) VALUES ('alice', 1)");
    assert_a_newer_session_opens_past_a_cached_epoch(&b, &other, || drop(bump())).await;
}

#[tokio::test]
async fn dropped_tables_and_lost_rows_never_bring_a_revoked_session_back() {
    let url = SHARED.url();
    let store = store(&url, "loss", SystemClock).await;
    let verifier = Verifier::new(Sealer::builder(keyring(8)).build().unwrap(), store);
    let token = login(&verifier, "alice").await;
    verifier.logout_everywhere("alice").await.unwrap();
    SHARED.psql("DROP TABLE loss_user_epochs");
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the cache TTL
    assert!(
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))),
        "a revoked session came back after its table was dropped"
    );
    let fresh = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&fresh).await.is_ok(), "a new login works on the recreated tables");

    // Rows deleted under the store: the same.
    verifier.logout_everywhere("alice").await.unwrap();
    SHARED.psql("DELETE FROM loss_meta; DELETE FROM loss_user_epochs");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(matches!(verifier.open::<()>(&fresh).await, Err(VerifyError::Revoked(Revocation::All))));
}

/// A table dropped while no server runs: the next server to start creates
/// it again and logs everyone out, rather than answer from an empty table.
#[tokio::test]
async fn a_table_dropped_while_no_server_runs_never_brings_a_revoked_session_back() {
    let url = SHARED.url();
    for (prefix, table) in [("boot_a", "boot_a_denied"), ("boot_b", "boot_b_user_epochs")] {
        let verifier = Verifier::new(
            Sealer::builder(keyring(8)).build().unwrap(),
            store(&url, prefix, SystemClock).await,
        );
        let token = login(&verifier, "alice").await;
        let other = login(&verifier, "alice").await;
        let session = verifier.open::<()>(&token).await.unwrap().into_session();
        verifier.logout(&session).await.unwrap();
        verifier.logout_everywhere("alice").await.unwrap();
        drop(verifier);
        SHARED.psql(&format!("DROP TABLE {table}"));

        let verifier = Verifier::new(
            Sealer::builder(keyring(8)).build().unwrap(),
            store(&url, prefix, SystemClock).await,
        );
        for revoked in [&token, &other] {
            let result = verifier.open::<()>(revoked).await;
            assert!(matches!(result, Err(VerifyError::Revoked(Revocation::All))), "{table}: {result:?}");
        }
        let fresh = login(&verifier, "alice").await;
        assert!(verifier.open::<()>(&fresh).await.is_ok(), "{table}");
    }
}

#[tokio::test]
async fn a_new_generation_found_by_one_server_reaches_the_others_cache_at_once() {
    let url = SHARED.url();
    let sealer = Sealer::builder(keyring(8)).build().unwrap();
    let finder = PostgresStore::with_pool(
        pool(&url).await,
        options("gen").with_cache_ttl(Duration::ZERO),
        SystemClock,
    )
    .await
    .unwrap();
    let finder = Verifier::new(sealer.clone(), finder);
    // The other server's cache ages on a clock that does not move: its
    // answers never go stale, so only the notification can make it refuse.
    let other = PostgresStore::with_pool(
        pool(&url).await,
        options("gen").with_cache_ttl(Duration::from_secs(1)),
        clock_at_now(),
    )
    .await
    .unwrap();
    assert!(other.wait_until_listening(Duration::from_secs(5)).await);
    let other = Verifier::new(sealer, other);
    let token = login(&other, "alice").await;
    assert!(other.open::<()>(&token).await.is_ok(), "cached as valid");

    SHARED.psql("DELETE FROM gen_meta"); // the generation row is lost
    assert!(matches!(finder.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All))));
    let refused = within(Duration::from_secs(2), async || {
        matches!(other.open::<()>(&token).await, Err(VerifyError::Revoked(Revocation::All)))
    });
    assert!(refused.await.is_some(), "the other server kept its cached answer after a new generation");
}

#[tokio::test]
async fn only_a_missing_table_is_taken_for_lost_data_and_only_when_the_store_owns_its_tables() {
    let url = SHARED.url();
    let verifier =
        Verifier::new(Sealer::builder(keyring(8)).build().unwrap(), store(&url, "faults", SystemClock).await);
    let token = login(&verifier, "alice").await;

    // Another database error (a trigger refuses the write): an error, not
    // lost data. The write is tried once (a sequence counts the tries: it
    // is not rolled back), not again after tables were "created again".
    SHARED.psql(
        "CREATE SEQUENCE faults_tries; CREATE FUNCTION faults_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN PERFORM nextval('faults_tries'); RAISE EXCEPTION 'refused'; END $$; \
         CREATE TRIGGER faults_refuse BEFORE INSERT OR UPDATE ON faults_user_epochs FOR EACH ROW \
         EXECUTE FUNCTION faults_refuse()",
    );
    let refused = verifier.logout_everywhere("bob").await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))), "{refused:?}");
    assert_eq!(SHARED.psql("SELECT last_value FROM faults_tries"), "1", "the refused write was tried again");
    tokio::time::sleep(Duration::from_millis(1100)).await; // past the cache TTL
    assert!(verifier.open::<()>(&token).await.is_ok(), "a refused write was taken for lost tables");

    // An application that runs the migrations itself: a dropped table is an
    // error, and the store does not create it behind the application's back.
    let options = options("faults").with_create_tables(false);
    let managed = PostgresStore::with_pool(pool(&url).await, options, SystemClock).await.unwrap();
    // A registry table its migrations have not made (yet) loses no
    // revocation: writing a record fails, and no one is logged out.
    SHARED.psql("DROP TABLE faults_sessions");
    let now = unix_now().cast_unsigned();
    let record = live_record("alice", 0, now);
    let recorded = sealed_session::registry::SessionRegistry::record(&managed, &record).await;
    assert!(matches!(recorded, Err(StoreError::Unavailable(_))), "{recorded:?}");
    let cutoffs = SHARED.psql("SELECT count(*) FROM faults_meta WHERE key = 'revoked_through'");
    assert_eq!(cutoffs, "0", "a missing registry table logged everyone out");
    SHARED.psql("DROP TABLE faults_user_epochs");
    assert!(matches!(managed.revoke_user("carol").await, Err(StoreError::Unavailable(_))));
    let tables = SHARED.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'faults_user_epochs'");
    assert_eq!(tables, "0", "the store recreated a table the application manages");
    // The revocations it held are lost: once the application's migrations
    // bring it back (empty), every session issued before is refused.
    SHARED.psql(&PostgresStore::migration_sql("faults").unwrap());
    let managed = Verifier::new(Sealer::builder(keyring(8)).build().unwrap(), managed);
    let result = managed.open::<()>(&token).await;
    assert!(matches!(result, Err(VerifyError::Revoked(Revocation::All))), "{result:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await; // a later second than the cutoff
    let fresh = login(&managed, "alice").await;
    assert!(managed.open::<()>(&fresh).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_killed_fails_closed_and_its_revocations_survive_the_restart() {
    let mut own = PostgresServer::start();
    let url = own.url();
    let store = store(&url, "killed", SystemClock).await;
    let verifier = Verifier::new(Sealer::builder(keyring(8)).build().unwrap(), store);
    let token = login(&verifier, "alice").await;
    let revoked = login(&verifier, "bob").await;
    verifier.logout_everywhere("bob").await.unwrap();
    assert!(verifier.open::<()>(&token).await.is_ok());

    own.kill(); // SIGKILL
    let refused = within(Duration::from_millis(1500), async || {
        matches!(verifier.open::<()>(&token).await, Err(VerifyError::Store(_)))
    });
    assert!(refused.await.is_some(), "a session was accepted while the database was down");
    for _ in 0..20 {
        assert!(matches!(verifier.open::<()>(&token).await, Err(VerifyError::Store(_))));
    }
    let not_listening = within(Duration::from_secs(10), async || {
        !verifier.store().wait_until_listening(Duration::from_millis(50)).await
    });
    assert!(not_listening.await.is_some(), "LISTEN reported up while the database was down");

    own.restart();
    let back = within(Duration::from_secs(10), async || verifier.open::<()>(&token).await.is_ok());
    assert!(back.await.is_some(), "the store did not come back after the database did");
    assert!(
        matches!(verifier.open::<()>(&revoked).await, Err(VerifyError::Revoked(Revocation::User))),
        "an acknowledged revocation was lost in the crash"
    );
    assert!(verifier.store().wait_until_listening(Duration::from_secs(10)).await, "LISTEN came back");
}

#[tokio::test]
async fn a_login_right_after_the_store_started_opens() {
    let store = store(&SHARED.url(), "fresh", SystemClock).await;
    let verifier = Verifier::new(Sealer::builder(keyring(8)).build().unwrap(), store);
    let started = std::time::Instant::now();
    let token = login(&verifier, "alice").await;
    assert!(started.elapsed() < Duration::from_millis(1100));
    assert!(verifier.open::<()>(&token).await.is_ok());
}

/// The documented staleness bound (a lost notification hides a revocation
/// for at most 1 s) holds for every configuration: a longer cache TTL is
/// refused before anything connects.
#[tokio::test]
async fn a_cache_ttl_beyond_the_staleness_bound_is_refused() {
    let lazy =
        sqlx::postgres::PgPoolOptions::new().connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
    for ttl in [Duration::from_millis(1001), Duration::from_secs(60)] {
        let refused =
            PostgresStore::with_pool(lazy.clone(), options("ttl").with_cache_ttl(ttl), SystemClock).await;
        match refused {
            Err(err @ PostgresSetupError::CacheTtl(_)) => {
                assert!(err.to_string().contains("at most 1 s"), "{err}")
            }
            other => panic!("a cache TTL of {ttl:?} was accepted: {:?}", other.map(|_| ())),
        }
    }
}

/// A revocation that times out waiting for a lock held elsewhere (an
/// operator's open transaction) is ended by the server too, on the
/// store's own connections, within its bound (5 s): else it waits as long
/// as the lock is held, keeping a connection of the pool (each retry one
/// more), and the pool runs dry.
#[tokio::test]
async fn a_statement_that_timed_out_is_ended_by_the_server_too() {
    use sqlx::Connection as _;
    let url = SHARED.url();
    let store = PostgresStore::connect_with(&url, options("server_bound")).await.unwrap();
    let mut operator = sqlx::PgConnection::connect(&url).await.unwrap();
    let mut held = operator.begin().await.unwrap();
    sqlx::query("LOCK TABLE server_bound_user_epochs IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *held)
        .await
        .unwrap();
    let err = store.revoke_user("alice").await.unwrap_err();
    assert!(matches!(err, StoreError::Timeout(_)), "{err:?}");
    let waiting = || async {
        let mut watcher = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE '%server_bound_user_epochs%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap()
    };
    assert_eq!(waiting().await, 1, "the statement waits on the server after the store gave up");
    tokio::time::sleep(Duration::from_millis(5500)).await;
    assert_eq!(waiting().await, 0, "the server ended it within its bound");
    held.rollback().await.unwrap();
    assert_eq!(store.revoke_user("alice").await.unwrap(), 1, "and the store works on");
    // The bound is set on each connection, and a URL's own value wins.
    let shown = |pool: &sqlx::PgPool| {
        let pool = pool.clone();
        async move {
            let timeouts: (String, String) = sqlx::query_as(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            timeouts
        }
    };
    assert_eq!(shown(store.pool()).await, ("5s".to_owned(), "5s".to_owned()));
    let own = format!("{url}?options=-c%20statement_timeout%3D60000");
    let store = PostgresStore::connect_with(&own, options("server_bound")).await.unwrap();
    assert_eq!(shown(store.pool()).await, ("1min".to_owned(), "5s".to_owned()));
}

/// A timeout of `Duration::MAX` ("no limit") is taken as one: the store
/// listens and answers, and nothing panics on a time past what an
/// `Instant` holds.
#[tokio::test]
async fn the_longest_timeout_is_no_panic() {
    let options = PostgresOptions::default().with_prefix("no_limit").with_timeout(Duration::MAX);
    let store = PostgresStore::with_pool(pool(&SHARED.url()).await, options, SystemClock).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await, "no LISTEN");
    let verifier = Verifier::new(sealer(8, &clock_at_now()), store);
    let token = login(&verifier, "alice").await;
    assert!(verifier.open::<()>(&token).await.is_ok());
}

/// Sends `signal` to the process `pid`.
fn signal(pid: &str, signal: &str) {
    let status = std::process::Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// A stopped server process, continued when dropped (a failed assertion
/// must not leave it stopped for the rest of the run).
struct Stopped(String);

impl Drop for Stopped {
    fn drop(&mut self) {
        signal(&self.0, "-CONT");
    }
}

/// A `LISTEN` connection that stays quiet (no revocations) but hears its
/// pings is kept: it is not taken for lost after the 5 s of quiet and the
/// 3 s a ping may take, which would empty the cache every 8 s.
#[tokio::test]
async fn a_quiet_listen_connection_that_hears_its_pings_is_kept() {
    let store = store(&SHARED.url(), "alive", SystemClock).await;
    let listener =
        || SHARED.psql("SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%alive_revocations%'");
    let pid = listener();
    assert!(!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()), "one listener: {pid:?}");
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(store.is_listening(), "the quiet connection was taken for lost");
    assert_eq!(listener(), pid, "the quiet connection was replaced");
}

/// A `LISTEN` that cannot be set up again in time (the link became slow:
/// every reply 150 ms late, the store's timeout 50 ms) leaves the cache
/// off, which the store says once at `warn`, naming its channel, not at
/// each attempt.
#[tokio::test]
async fn a_listen_that_cannot_be_set_up_is_said_once() {
    let logs = sealed_session_testkit::Logs::capture();
    let slow = Proxy::to(SHARED.port());
    let url = format!("postgres://postgres@127.0.0.1:{}/postgres", slow.port());
    let options = options("slow_link").with_timeout(Duration::from_millis(50));
    let store = PostgresStore::with_pool(pool(&url).await, options, SystemClock).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await, "no LISTEN");
    // Counted from here: setting it up may have taken a second attempt.
    let said = || logs.lines_with(&["WARN", "cannot LISTEN", "slow_link_revocations"]);
    let before = said();
    slow.delay_replies(Duration::from_millis(150));
    SHARED.psql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE query LIKE 'LISTEN%slow_link_revocations%'",
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!store.is_listening(), "a LISTEN set up through the slow link");
    let after = said();
    assert_eq!(after.len(), before.len() + 1, "{after:#?}");
}

/// A `LISTEN` connection that never delivered (a connection pooler in
/// transaction mode takes the `LISTEN` and drops the notifications) never
/// puts the cache in use: it must hear its own ping first, and checks read
/// the database meanwhile, so another server's logout is refused at once.
/// The same store through a proxy that delivers is listening at once.
#[tokio::test]
async fn a_listen_connection_that_never_delivered_is_never_trusted() {
    let logs = sealed_session_testkit::Logs::capture();
    let deaf = Proxy::to(SHARED.port());
    deaf.drop_notifications();
    let url = |proxy: &Proxy| format!("postgres://postgres@127.0.0.1:{}/postgres", proxy.port());
    let clock = clock_at_now();
    let verifier = Verifier::new(
        sealer(8, &clock),
        PostgresStore::with_pool(pool(&url(&deaf)).await, options("deaf"), clock.clone()).await.unwrap(),
    );
    past_the_generation(&clock);
    let other = server(&SHARED.url(), "deaf", &clock).await;
    let alice = login(&verifier, "alice").await;
    assert!(!verifier.store().wait_until_listening(Duration::from_secs(5)).await, "a deaf LISTEN is in use");
    // Said (once, at warn: the first attempt's reason, which on a loaded
    // machine may be a slow answer rather than the unheard ping).
    let said = logs.lines_with(&["WARN", "cannot LISTEN", "deaf_revocations"]);
    assert!(!said.is_empty(), "the deaf connection went unsaid");
    assert!(verifier.open::<()>(&alice).await.is_ok());
    other.logout_everywhere("alice").await.unwrap();
    let result = verifier.open::<()>(&alice).await;
    assert!(matches!(result, Err(VerifyError::Revoked(Revocation::User))), "{result:?}");

    let hearing = Proxy::to(SHARED.port());
    let store = PostgresStore::with_pool(pool(&url(&hearing)).await, options("deaf"), clock).await.unwrap();
    assert!(
        store.wait_until_listening(Duration::from_secs(5)).await,
        "a LISTEN through a proxy that delivers"
    );
}

/// A LISTEN connection that stops delivering without closing (its server
/// process stopped, as a firewall or NAT that forgot the connection leaves
/// it) is noticed by the listener's ping within its bounds (5 s of quiet,
/// 3 s for the ping) and replaced by a new LISTEN on another connection.
/// (The store is unlistening only between the two, too briefly to watch.)
#[tokio::test]
async fn a_listen_connection_that_delivers_nothing_is_noticed_and_replaced() {
    let pool = pool(&SHARED.url()).await;
    let store = PostgresStore::with_pool(pool.clone(), options("quiet"), SystemClock).await.unwrap();
    assert!(store.wait_until_listening(Duration::from_secs(5)).await, "no LISTEN");
    let listeners = |but: &str| {
        SHARED.psql(&format!(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE 'LISTEN%quiet_revocations%' AND pid::text <> '{but}'"
        ))
    };
    let pid = listeners("");
    assert!(!pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()), "one listener: {pid:?}");
    signal(&pid, "-STOP");
    let stopped = Stopped(pid);
    let started = std::time::Instant::now();
    while listeners(&stopped.0).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(20), "a silent LISTEN connection is still trusted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(started.elapsed() >= Duration::from_secs(3), "replaced before any ping could return");
    assert!(store.wait_until_listening(Duration::from_secs(5)).await, "the new LISTEN is not in use");
    // Neither the old listener (its `UNLISTEN` hangs on the stopped
    // process) nor the new one holds a connection of the pool.
    let mut held = Vec::new();
    for _ in 0..4 {
        let acquired = tokio::time::timeout(Duration::from_secs(3), pool.acquire()).await;
        held.push(acquired.expect("a connection of the pool is held by a listener").unwrap());
    }
    drop(stopped);
}
