//! Loopback load test: `GET /api/session` with a valid cookie through the
//! session layer, against the same response from a route without it, in one
//! run, for the SQLite store and for Redis with its cache; then the same
//! route on peers (tower-sessions with its memory and its Redis store,
//! axum-extra's `PrivateCookieJar`), each against the same baseline; then
//! the same on actix-web (this crate's middleware, actix-session with its
//! private cookie store and its Redis store).
//!
//! Needs wrk (`apt-get install wrk`) and redis-server. Run with
//! `cargo bench -p sealed-session-demo --bench load`; `LOAD_SECONDS` sets
//! the length of each round per server (default 5).
//!
//! The servers run in this process, pinned to CPU 0 with one tokio worker;
//! wrk runs on CPU 1 with one thread and 32 connections (`taskset`, from
//! util-linux), so the servers' throughput is bound by their own CPU cost.
//! Seven rounds alternate between the two servers so that noise from other
//! work on the machine falls on both. The report gives the median of each
//! server's figures, and two costs from the rounds' pairs: the median of the
//! throughput ratios, and the median of the ratios of the CPU time this
//! process spent per request (from /proc/self/stat).
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::process::Command;

use axum::routing::get;
use axum::Json;
use axum::Router;
use axum_extra::extract::cookie::{Cookie, Key, PrivateCookieJar};
use sealed_session::web::WebConfig;
use sealed_session::{ManualClock, Opened, RevocationStore, Sealer};
use sealed_session_demo::{app, config as demo_config, security_headers, Profile, SessionJson, Setup};
use sealed_session_sqlite::SqliteOptions;

/// Rounds per server; the report takes the median.
const ROUNDS: usize = 7;

struct Run {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU time this process (the servers) spent per request, in µs.
    cpu_us_per_request: f64,
}

/// CPU time (user + system) this process has used, in clock ticks (1/100 s).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let after = stat.rsplit_once(')').expect("a stat line").1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn parse_latency_ms(text: &str) -> f64 {
    let (number, factor) = if let Some(us) = text.strip_suffix("us") {
        (us, 0.001)
    } else if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1000.0)
    } else {
        panic!("unknown latency unit in {text:?}")
    };
    number.parse::<f64>().expect("a latency") * factor
}

/// One wrk round. Panics on any error or non-2xx response under load.
fn wrk(url: &str, cookie: &str, seconds: u64) -> Run {
    let ticks = cpu_ticks();
    let output = Command::new("taskset")
        .args([
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c32",
            &format!("-d{seconds}s"),
            "--latency",
            "-H",
            &format!("Cookie: {cookie}"),
            url,
        ])
        .output()
        .expect("run wrk (apt-get install wrk)");
    let ticks = cpu_ticks() - ticks;
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {report}");
    assert!(!report.contains("Non-2xx"), "errors under load: {report}");
    assert!(!report.contains("Socket errors"), "socket errors under load: {report}");
    let field = |prefix: &str| {
        report
            .lines()
            .find_map(|line| line.trim().strip_prefix(prefix).map(str::trim))
            .unwrap_or_else(|| panic!("no {prefix:?} in {report}"))
            .to_owned()
    };
    let requests: f64 = report
        .lines()
        .find_map(|line| line.trim().split_once(" requests in ").map(|(n, _)| n.parse().expect("a count")))
        .unwrap_or_else(|| panic!("no request count in {report}"));
    Run {
        requests_per_second: field("Requests/sec:").parse().expect("a rate"),
        p50_ms: parse_latency_ms(&field("50%")),
        p99_ms: parse_latency_ms(&field("99%")),
        cpu_us_per_request: ticks as f64 * 10_000.0 / requests,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/session", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

/// Alice's session cookie, the session opened once (for the baselines) and
/// the sealer.
async fn signed_in<S: RevocationStore>(config: &WebConfig<S>) -> (String, Opened<Profile>, Sealer) {
    let sealer = config.verifier().sealer().clone();
    let session = config.verifier().login("alice", alice()).await.unwrap();
    let token = sealer.seal(&session).unwrap();
    let opened = sealer.open::<Profile>(&token).unwrap();
    (format!("__Host-session={token}"), opened, sealer)
}

/// Measures one store: the session route and its baseline, alternating.
async fn measure<S: RevocationStore + 'static>(name: &str, config: WebConfig<S>, seconds: u64) {
    // The baseline builds the same body from a session opened once: the
    // route's own work without the layer's (cookie, open, revocation check,
    // handle, Set-Cookie decision).
    let (cookie, opened, sealer) = signed_in(&config).await;
    let baseline = Router::new()
        .route(
            "/api/session",
            get(move || {
                let (opened, sealer) = (opened.clone(), sealer.clone());
                async move {
                    let csrf = sealer.csrf_token(opened.session());
                    Json(SessionJson::new(opened.session(), opened.key_id(), opened.idle_expires_at(), csrf))
                }
            }),
        )
        .layer(axum::middleware::map_response(security_headers));
    let without_layer = serve(baseline).await;
    let with_layer = serve(app(config, sealed_session_demo::SUDO_WINDOW)).await;
    let (a, b, c) = (with_layer.clone(), without_layer.clone(), cookie.clone());
    let (layered_body, plain_body) =
        tokio::task::spawn_blocking(move || (get_once(&a, &c), get_once(&b, &c))).await.unwrap();
    assert_eq!(layered_body.len(), plain_body.len(), "both routes answer alike");
    compare(name, &with_layer, &cookie, &without_layer, &cookie, seconds).await;
}

/// Alternates rounds on the route at `with` (sent `with_cookie`) and the
/// baseline at `without`, and prints their medians as one table row.
async fn compare(
    name: &str,
    with: &str,
    with_cookie: &str,
    without: &str,
    without_cookie: &str,
    seconds: u64,
) {
    let (mut layered, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let (a, b) = (with.to_owned(), without.to_owned());
        let (c, d) = (with_cookie.to_owned(), without_cookie.to_owned());
        let (l, p) =
            tokio::task::spawn_blocking(move || (wrk(&a, &c, seconds), wrk(&b, &d, seconds))).await.unwrap();
        layered.push(l);
        plain.push(p);
    }
    let rate = |runs: &[Run]| median(runs.iter().map(|r| r.requests_per_second).collect());
    let p50 = |runs: &[Run]| median(runs.iter().map(|r| r.p50_ms).collect());
    let p99 = |runs: &[Run]| median(runs.iter().map(|r| r.p99_ms).collect());
    let cpu = |runs: &[Run]| median(runs.iter().map(|r| r.cpu_us_per_request).collect());
    // Each round's pair ran back to back: their ratios cancel the drift of
    // a shared machine between rounds. The CPU ratio is also blind to time
    // the hypervisor gave to other guests (steal), which lowers throughput
    // but is not this process's CPU time.
    let pairs = || layered.iter().zip(&plain);
    let ratio = median(pairs().map(|(l, p)| l.requests_per_second / p.requests_per_second).collect());
    let cpu_ratio = median(pairs().map(|(l, p)| p.cpu_us_per_request / l.cpu_us_per_request).collect());
    println!(
        "| {name} | {:.0} | {:.0} | {:.3} | {:.1}% | {:.1}% | {:.2} / {:.2} | {:.2} / {:.2} | {:.1} / {:.1} |",
        rate(&layered),
        rate(&plain),
        ratio,
        (1.0 - ratio) * 100.0,
        (1.0 - cpu_ratio) * 100.0,
        p50(&layered),
        p99(&layered),
        p50(&plain),
        p99(&plain),
        cpu(&layered),
        cpu(&plain),
    );
}

/// The peers' answer: the session's user and data as JSON.
fn peer_value(profile: &Profile) -> serde_json::Value {
    serde_json::json!({ "user": "alice", "display_name": profile.display_name, "cart": profile.cart })
}

fn peer_json(profile: &Profile) -> Json<serde_json::Value> {
    Json(peer_value(profile))
}

fn alice() -> Profile {
    Profile { display_name: "Alice".into(), cart: Vec::new() }
}

/// A peer's session route, and `/login` that starts its session; returns
/// the URL of the route and the cookie `/login` set.
async fn serve_peer(router: Router) -> (String, String) {
    let url = serve(router).await;
    let cookie = peer_cookie(&url).await;
    (url, cookie)
}

/// tower-sessions (a session ID in the cookie, the data in `store`).
fn tower_sessions_app<S: tower_sessions::SessionStore + Clone>(store: S) -> Router {
    use tower_sessions::{Session, SessionManagerLayer};
    async fn login(session: Session) -> &'static str {
        session.insert("profile", alice()).await.unwrap();
        "signed in"
    }
    async fn read(session: Session) -> Result<Json<serde_json::Value>, axum::http::StatusCode> {
        let profile = session.get::<Profile>("profile").await.ok().flatten();
        profile.as_ref().map(peer_json).ok_or(axum::http::StatusCode::UNAUTHORIZED)
    }
    Router::new()
        .route("/login", get(login))
        .route("/api/session", get(read))
        .layer(SessionManagerLayer::new(store))
        .layer(axum::middleware::map_response(security_headers))
}

/// axum-extra's `PrivateCookieJar`: the data as JSON in an AES-256-GCM
/// cookie, with no revocation.
fn private_jar_app() -> Router {
    async fn login(jar: PrivateCookieJar) -> (PrivateCookieJar, &'static str) {
        let json = serde_json::to_string(&alice()).unwrap();
        (jar.add(Cookie::build(("session", json)).path("/").secure(true).http_only(true)), "signed in")
    }
    async fn read(jar: PrivateCookieJar) -> Result<Json<serde_json::Value>, axum::http::StatusCode> {
        let profile = jar.get("session").and_then(|c| serde_json::from_str::<Profile>(c.value()).ok());
        profile.as_ref().map(peer_json).ok_or(axum::http::StatusCode::UNAUTHORIZED)
    }
    Router::new()
        .route("/login", get(login))
        .route("/api/session", get(read))
        .with_state(Key::generate())
        .layer(axum::middleware::map_response(security_headers))
}

/// Measures the peers on the same route, each against the baseline of
/// alice's session (the route with no session layer at all).
async fn measure_peers(config: WebConfig<sealed_session::MemoryStore>, redis_url: &str, seconds: u64) {
    let (cookie, opened, _) = signed_in(&config).await;
    let baseline = Router::new()
        .route(
            "/api/session",
            get(move || {
                let opened = opened.clone();
                async move { peer_json(opened.session().data()) }
            }),
        )
        .layer(axum::middleware::map_response(security_headers));
    let without = serve(baseline).await;

    // This layer on the peers' route, with the memory store: the same
    // baseline as theirs.
    async fn read(session: sealed_session_axum::Session<Profile>) -> Json<serde_json::Value> {
        peer_json(session.data())
    }
    let ours = Router::new()
        .route("/api/session", get(read))
        .layer(sealed_session_axum::SessionLayer::new(config))
        .layer(axum::middleware::map_response(security_headers));
    let url = serve(ours).await;
    compare("sealed-session (this layer), memory store", &url, &cookie, &without, "", seconds).await;

    let (url, cookie) = serve_peer(tower_sessions_app(tower_sessions::MemoryStore::default())).await;
    compare("tower-sessions, memory store", &url, &cookie, &without, "", seconds).await;

    use tower_sessions_redis_store::fred::prelude::{ClientLike as _, Config, Pool};
    let pool = Pool::new(Config::from_url(redis_url).unwrap(), None, None, None, 1).unwrap();
    let _connection = pool.connect();
    pool.wait_for_connect().await.unwrap();
    let store = tower_sessions_redis_store::RedisStore::new(pool);
    let (url, cookie) = serve_peer(tower_sessions_app(store)).await;
    compare("tower-sessions, Redis store", &url, &cookie, &without, "", seconds).await;

    let (url, cookie) = serve_peer(private_jar_app()).await;
    compare("axum-extra PrivateCookieJar", &url, &cookie, &without, "", seconds).await;
}

/// Serves the actix-web app that `$factory` makes (one worker, on this
/// process's CPU) and evaluates to the URL of its session route.
macro_rules! serve_actix {
    ($factory:expr) => {{
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/api/session", listener.local_addr().unwrap());
        let server =
            actix_web::HttpServer::new($factory).workers(1).disable_signals().listen(listener).unwrap().run();
        tokio::spawn(server);
        url
    }};
}

/// The demo's security headers, on actix-web.
fn actix_headers() -> actix_web::middleware::DefaultHeaders {
    let mut headers = actix_web::middleware::DefaultHeaders::new().add(("cache-control", "no-store"));
    for header in sealed_session_demo::SECURITY_HEADERS {
        headers = headers.add(header);
    }
    headers
}

/// The same on actix-web: the demo's route through this crate's
/// middleware and the peers' route through it and through actix-session's
/// cookie and Redis stores, each against a route with no session handling.
async fn measure_actix(config: WebConfig<sealed_session::MemoryStore>, redis_url: &str, seconds: u64) {
    use actix_web::{web, App, HttpResponse};
    let (cookie, opened, sealer) = signed_in(&config).await;

    let (o, z) = (opened.clone(), sealer.clone());
    let baseline = serve_actix!(move || {
        let (opened, sealer) = (o.clone(), z.clone());
        App::new()
            .route(
                "/api/session",
                web::get().to(move || {
                    let (opened, sealer) = (opened.clone(), sealer.clone());
                    async move {
                        let csrf = sealer.csrf_token(opened.session());
                        let json = SessionJson::new(
                            opened.session(),
                            opened.key_id(),
                            opened.idle_expires_at(),
                            csrf,
                        );
                        HttpResponse::Ok().json(json)
                    }
                }),
            )
            .wrap(actix_headers())
    });
    let middleware = sealed_session_demo::actix_app::middleware(config);
    let m = middleware.clone();
    let demo = serve_actix!(move || sealed_session_demo::actix_app::app(
        m.clone(),
        sealed_session_demo::SUDO_WINDOW
    ));
    let (a, b, c) = (demo.clone(), baseline.clone(), cookie.clone());
    let (with_body, without_body) =
        tokio::task::spawn_blocking(move || (get_once(&a, &c), get_once(&b, &c))).await.unwrap();
    assert_eq!(with_body.len(), without_body.len(), "both routes answer alike");
    compare("this middleware, memory store (demo route)", &demo, &cookie, &baseline, &cookie, seconds).await;

    let o = opened.clone();
    let without = serve_actix!(move || {
        let opened = o.clone();
        App::new()
            .route(
                "/api/session",
                web::get().to(move || {
                    let opened = opened.clone();
                    async move { HttpResponse::Ok().json(peer_value(opened.session().data())) }
                }),
            )
            .wrap(actix_headers())
    });
    async fn read(session: sealed_session_actix::Session<Profile>) -> HttpResponse {
        HttpResponse::Ok().json(peer_value(session.data()))
    }
    let m = middleware.clone();
    let ours = serve_actix!(move || {
        App::new().route("/api/session", web::get().to(read)).wrap(m.clone()).wrap(actix_headers())
    });
    compare("this middleware, memory store (peers' route)", &ours, &cookie, &without, "", seconds).await;

    use actix_session::config::CookieContentSecurity;
    use actix_session::storage::{CookieSessionStore, RedisSessionStore};
    async fn login(session: actix_session::Session) -> &'static str {
        session.insert("profile", alice()).unwrap();
        "signed in"
    }
    async fn peer_read(session: actix_session::Session) -> HttpResponse {
        match session.get::<Profile>("profile").ok().flatten() {
            Some(profile) => HttpResponse::Ok().json(peer_value(&profile)),
            None => HttpResponse::Unauthorized().finish(),
        }
    }
    let key = actix_web::cookie::Key::generate();
    let url = serve_actix!(move || {
        let store = actix_session::SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
            .cookie_content_security(CookieContentSecurity::Private)
            .build();
        App::new()
            .route("/login", web::get().to(login))
            .route("/api/session", web::get().to(peer_read))
            .wrap(store)
            .wrap(actix_headers())
    });
    let cookie = peer_cookie(&url).await;
    compare("actix-session, cookie store (private: encrypted)", &url, &cookie, &without, "", seconds).await;

    let redis = RedisSessionStore::new(redis_url).await.unwrap();
    let key = actix_web::cookie::Key::generate();
    let url = serve_actix!(move || {
        App::new()
            .route("/login", web::get().to(login))
            .route("/api/session", web::get().to(peer_read))
            .wrap(actix_session::SessionMiddleware::new(redis.clone(), key.clone()))
            .wrap(actix_headers())
    });
    let cookie = peer_cookie(&url).await;
    compare("actix-session, Redis store", &url, &cookie, &without, "", seconds).await;
}

/// Signs in to a peer at the session route `url` through its `/login`;
/// returns the cookie, after checking the session route reads it.
async fn peer_cookie(url: &str) -> String {
    let address = url.trim_start_matches("http://").split('/').next().unwrap_or_default().to_owned();
    let cookie = tokio::task::spawn_blocking(move || {
        let reply = sealed_session_testkit::demo::http(&address, "GET", "/login", &[], "");
        assert_eq!(reply.status, 200, "the peer's login works: {}", reply.body);
        reply.cookies().into_iter().next().expect("the peer's session cookie")
    })
    .await
    .unwrap();
    let (a, c) = (url.to_owned(), cookie.clone());
    let body = tokio::task::spawn_blocking(move || get_once(&a, &c)).await.unwrap();
    assert!(body.contains("Alice"), "the peer's route reads its session: {body}");
    cookie
}

/// One plain GET of the session route: the body, after checking the
/// status is 200.
fn get_once(url: &str, cookie: &str) -> String {
    let address = url.trim_start_matches("http://").split('/').next().unwrap_or_default();
    let (status, body) = sealed_session_testkit::demo::http_get(address, "/api/session", Some(cookie));
    assert_eq!(status, 200, "the session route works: {body}");
    body
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing
    // and expects a quick exit.
    if !std::env::args().any(|arg| arg == "--bench") {
        return;
    }
    let seconds = std::env::var("LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    // The servers (every thread of this process) on CPU 0, wrk on CPU 1:
    // the servers' throughput then measures their own CPU cost, not how
    // the scheduler shares two cores between them and wrk.
    let pinned = Command::new("taskset")
        .args(["-a", "-p", "-c", "0", &std::process::id().to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .expect("run taskset (util-linux)");
    assert!(pinned.success(), "cannot pin the servers to CPU 0");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.block_on(async {
        let past = time::OffsetDateTime::now_utc().unix_timestamp() - 10;
        println!(
            "| store | with layer (req/s) | without (req/s) | ratio | cost | CPU cost | p50 / p99 with (ms) | p50 / p99 without (ms) | server CPU µs/request, with / without |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");

        // The layer's own cost, with a store that costs next to nothing.
        let sealer = sealed_session::Sealer::builder(sealed_session::Keyring::generate().unwrap());
        measure("memory (reference)", demo_config(sealer, sealed_session::MemoryStore::new()).unwrap(), seconds).await;

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("revocations.sqlite");
        let options = SqliteOptions::new(&path).create_if_missing(true).clock(ManualClock::at_unix(past));
        drop(options.open().await.unwrap());
        let setup = Setup { data_dir: dir.path().to_owned(), keyring: None, store: None, bound_lifetime: None, max_sessions: None };
        measure("SQLite", setup.open().await.unwrap().0, seconds).await;

        let redis = sealed_session_testkit::redis::RedisServer::start();
        assert_eq!(redis.cli(&["SET", "sealed-session:generation", &past.to_string()]), "OK");
        let setup = Setup { data_dir: dir.path().to_owned(), keyring: None, store: Some(redis.url()), bound_lifetime: None, max_sessions: None };
        measure("Redis + cache", setup.open().await.unwrap().0, seconds).await;

        println!();
        println!("Peers on the same route, each against a route with no session handling:");
        println!();
        println!(
            "| library | with sessions (req/s) | without (req/s) | ratio | cost | CPU cost | p50 / p99 with (ms) | p50 / p99 without (ms) | server CPU µs/request, with / without |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let sealer = sealed_session::Sealer::builder(sealed_session::Keyring::generate().unwrap());
        let config = WebConfig::builder(sealer, sealed_session::MemoryStore::new()).build().unwrap();
        measure_peers(config, &redis.url(), seconds).await;

        println!();
        println!("On actix-web, each against a route with no session handling:");
        println!();
        println!(
            "| library | with sessions (req/s) | without (req/s) | ratio | cost | CPU cost | p50 / p99 with (ms) | p50 / p99 without (ms) | server CPU µs/request, with / without |"
        );
        println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let sealer = sealed_session::Sealer::builder(sealed_session::Keyring::generate().unwrap());
        measure_actix(demo_config(sealer, sealed_session::MemoryStore::new()).unwrap(), &redis.url(), seconds).await;
    });
}
