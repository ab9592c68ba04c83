//! A TCP proxy on loopback that can stop delivering to its subscribers
//! without closing their connections: what a firewall or NAT that forgot a
//! connection does to it (a half-open link), which no server can be made to
//! do to one of its clients alone.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Forwards every connection to its port to `127.0.0.1:target`, on threads
/// of its own, until dropped.
pub struct Proxy {
    port: u16,
    state: Arc<State>,
}

struct State {
    /// The port new connections are forwarded to.
    target: AtomicU16,
    /// Stop forwarding the server's bytes to connections that subscribed.
    frozen: AtomicBool,
    /// Set on drop: every thread ends.
    closed: AtomicBool,
}

impl Proxy {
    /// A proxy to the loopback port `target`.
    #[must_use]
    pub fn to(target: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(State {
            target: AtomicU16::new(target),
            frozen: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        let accepting = Arc::clone(&state);
        std::thread::spawn(move || {
            while !accepting.closed.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => connect(client, accepting.target.load(Ordering::SeqCst), &accepting),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self { port, state }
    }

    /// The port to connect to instead of the target's.
    #[must_use]
    pub fn port(&self) -> u16 {
        self.port
    }

    /// From now on the server's bytes no longer reach a connection whose
    /// client sent `SUBSCRIBE` (Redis) or `LISTEN` (PostgreSQL); its
    /// connection stays open, and what it sends still goes through.
    pub fn freeze_subscribers(&self) {
        self.state.frozen.store(true, Ordering::SeqCst);
    }

    /// Delivers again what was held back, and what comes next.
    pub fn thaw(&self) {
        self.state.frozen.store(false, Ordering::SeqCst);
    }

    /// Forwards the connections made from now on to the loopback port
    /// `target` (what a moved address or a failover does to a client's new
    /// connections); those made before keep theirs.
    pub fn retarget(&self, target: u16) {
        self.state.target.store(target, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.state.closed.store(true, Ordering::SeqCst);
    }
}

/// Joins `client` to a new connection to `target`, one thread each way.
fn connect(client: TcpStream, target: u16, state: &Arc<State>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else {
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nonblocking(false);
    let subscriber = Arc::new(AtomicBool::new(false));
    let (client_in, server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (up_state, up_subscriber) = (Arc::clone(state), Arc::clone(&subscriber));
    std::thread::spawn(move || {
        pump(client_in, server_out, &up_state, |bytes| {
            if contains(bytes, b"SUBSCRIBE") || contains(bytes, b"subscribe") || contains(bytes, b"LISTEN") {
                up_subscriber.store(true, Ordering::SeqCst);
            }
            true
        });
    });
    let down_state = Arc::clone(state);
    std::thread::spawn(move || {
        pump(server, client, &Arc::clone(&down_state), |_| {
            // Hold the bytes (and the connection) while frozen.
            while down_state.frozen.load(Ordering::SeqCst) && subscriber.load(Ordering::SeqCst) {
                if down_state.closed.load(Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            true
        });
    });
}

/// Copies `from` to `to` until either closes, the proxy is dropped, or
/// `before` (shown each chunk before it goes on) says stop.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &State, mut before: impl FnMut(&[u8]) -> bool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buffer = [0; 16 * 1024];
    while !state.closed.load(Ordering::SeqCst) {
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                let chunk = &buffer[..n];
                if !before(chunk) || to.write_all(chunk).is_err() {
                    break;
                }
            }
            Err(err)
                if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
    let _ = from.shutdown(Shutdown::Both);
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
