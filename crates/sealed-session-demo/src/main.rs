//! `sealed-session-demo`: a small web app that shows sealed sessions at
//! work. `cargo run -p sealed-session-demo`, then open http://127.0.0.1:3000.

#![forbid(unsafe_code)]
// Clippy on this binary's test target overflows rustc's query depth at the
// default limit of 128 (in the standard library's niche types); the binary
// itself compiles either way.
#![recursion_limit = "256"]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use sealed_session::KeyringWatcher;
use sealed_session_demo::{actix_app, app, Setup};
use tokio::signal::unix::{signal, SignalKind};
use tracing_subscriber::EnvFilter;

/// The sealed-session demo web app.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "ADDR", default_value = "127.0.0.1:3000")]
    addr: SocketAddr,
    /// Directory for the keyring and the SQLite revocation store; created
    /// on first start.
    #[arg(long, env = "DEMO_DATA_DIR", default_value = "demo-data")]
    data_dir: PathBuf,
    /// Keyring file [default: DATA_DIR/keyring.toml, created if missing].
    #[arg(long, env = "DEMO_KEYRING")]
    keyring: Option<PathBuf>,
    /// Revocation store: sqlite:PATH[?create=true], postgres://…, redis://…,
    /// rediss://… or redis+sentinel://…. Instances sharing one store share logouts
    /// [default: sqlite:DATA_DIR/revocations.sqlite?create=true].
    #[arg(long, env = "DEMO_STORE", hide_env_values = true)]
    store: Option<String>,
    /// The web framework that serves the app: the same routes, pages, JSON
    /// and cookies on either.
    #[arg(long, env = "DEMO_FRAMEWORK", value_enum, default_value_t = Framework::Axum)]
    framework: Framework,
    /// Seconds a device-bound session cookie lives after each proof of the
    /// browser's key (DBSC): a copied cookie works no longer.
    #[arg(long, env = "DEMO_DBSC_COOKIE_LIFETIME", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    dbsc_cookie_lifetime: u64,
    /// Seconds after a sign-in or password check during which the
    /// sensitive pages and actions (settings, profile, signing out the
    /// other devices, ending a device) go on without asking for the
    /// password again.
    #[arg(long, env = "DEMO_SUDO_WINDOW", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    sudo_window: u64,
    /// The most sessions a user may have at once (1 to 90: a registry
    /// keeps 100 records per user, and the rest is room for logins at the
    /// same moment): a login beyond it ends their oldest session.
    #[arg(long, env = "DEMO_MAX_SESSIONS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=90))]
    max_sessions: u64,
}

/// The web frameworks the demo runs on.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Framework {
    /// axum, with `sealed-session-axum`'s layer.
    Axum,
    /// actix-web, with `sealed-session-actix`'s middleware.
    Actix,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // Colours only on a terminal: a log file or collector gets plain text.
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let setup = Setup {
        data_dir: args.data_dir,
        keyring: args.keyring,
        store: args.store,
        bound_lifetime: Some(std::time::Duration::from_secs(args.dbsc_cookie_lifetime)),
        max_sessions: Some(usize::try_from(args.max_sessions).unwrap_or(usize::MAX)),
    };
    let sudo_window = std::time::Duration::from_secs(args.sudo_window);
    match serve(&setup, args.addr, args.framework, sudo_window).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn serve(
    setup: &Setup,
    addr: SocketAddr,
    framework: Framework,
    sudo_window: std::time::Duration,
) -> Result<(), String> {
    sealed_session_demo::install_metrics()?;
    let (config, watcher) = setup.open().await.map_err(|err| err.to_string())?;
    let watcher = std::sync::Arc::new(watcher);
    tokio::spawn(reload_on_hangup(std::sync::Arc::clone(&watcher)));
    let listener =
        std::net::TcpListener::bind(addr).map_err(|err| format!("cannot listen on {addr}: {err}"))?;
    let local = listener.local_addr().map_err(|err| err.to_string())?;
    let announce = || {
        println!(
            "sealed-session demo listening on http://{local}/ (revocation store: {}, {framework:?})",
            setup.store_url_for_display()
        );
        println!(
            "sign in as alice / alice-pass or bob / bob-pass; the keyring file is followed (SIGHUP re-reads it at once); Ctrl-C stops it"
        );
        if !local.ip().is_loopback() {
            tracing::warn!(
                "{local} is reachable from other machines: anyone there can read /metrics and sign in with the \
                 demo's published passwords (a real server serves metrics on an internal port)"
            );
        }
    };
    match framework {
        Framework::Axum => {
            let app = app(config, sudo_window);
            listener.set_nonblocking(true).map_err(|err| err.to_string())?;
            let listener = tokio::net::TcpListener::from_std(listener).map_err(|err| err.to_string())?;
            announce();
            serve_axum(listener, app).await;
            Ok(())
        }
        Framework::Actix => {
            let sessions = actix_app::middleware(config);
            let server = actix_web::HttpServer::new(move || actix_app::app(sessions.clone(), sudo_window))
                .listen(listener)
                .map_err(|err| err.to_string())?
                .run();
            announce();
            server.await.map_err(|err| err.to_string())
        }
    }
}

/// How long a client has to send a request's head, or to start its next
/// one on a kept-alive connection (actix-web's default, which the actix
/// variant keeps).
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The most connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 1024;
/// How long a shutdown waits for the requests in flight (as actix-web).
const SHUTDOWN_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves `app` as `axum::serve` does, over HTTP/1.1, with what that lacks:
/// a client that trickles in a request's head, or holds a connection open
/// without one, is cut off after [`HEADER_TIMEOUT`] (else it holds a task
/// and a descriptor for good), at most [`MAX_CONNECTIONS`] are served at
/// once, and a shutdown waits [`SHUTDOWN_WAIT`] at most. A body sent, or a
/// response read, that slowly is not cut off, on either framework: a
/// server facing the internet wants a proxy in front that bounds them.
async fn serve_axum(listener: tokio::net::TcpListener, app: axum::Router) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    let connections = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            accepted = async {
                let permit = std::sync::Arc::clone(&connections).acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
            () = &mut stop => break,
        };
        let (permit, stream) = match accepted {
            (Ok(permit), Ok((stream, _))) => (permit, stream),
            // That one client's connection failed: on to the next.
            (_, Err(err)) if is_connection_error(&err) => continue,
            (_, Err(err)) => {
                // Out of descriptors, say: said, and tried again shortly.
                tracing::error!(error = %err, "cannot accept a connection");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
            // The semaphore is never closed.
            (Err(_), _) => continue,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away or times out is no error of the server's.
            let _ = connection.await;
            drop(permit);
        });
    }
    // New clients are refused at once, not left waiting in the backlog.
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_WAIT) => {
            tracing::warn!("requests still running {}s after the shutdown began: stopped", SHUTDOWN_WAIT.as_secs());
        }
    }
}

/// Whether an `accept` error is one client's (its connection was reset or
/// aborted before it was accepted), not the listener's.
fn is_connection_error(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// Re-reads the keyring file on SIGHUP, at once. The watcher follows the
/// file anyway; a file that does not load leaves the current keyring in
/// place (the watcher logs why).
async fn reload_on_hangup(watcher: std::sync::Arc<KeyringWatcher>) {
    let Ok(mut hangup) = signal(SignalKind::hangup()) else { return };
    while hangup.recv().await.is_some() {
        watcher.check_now();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown() {
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async { match term.as_mut() { Some(term) => { term.recv().await; } None => std::future::pending().await } } => {}
    }
}
