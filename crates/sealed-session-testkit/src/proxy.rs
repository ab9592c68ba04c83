//! A TCP proxy on loopback that can stop delivering to its subscribers
//! without closing their connections: what a firewall or NAT that forgot a
//! connection does to it (a half-open link), which no server can be made to
//! do to one of its clients alone. It can also hold every reply back for a
//! while: a distant server, on a machine where every server is local.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A subscriber gets all the server sends.
const HEARING: u8 = 0;
/// A subscriber gets all but the PostgreSQL notifications.
const NO_NOTIFICATIONS: u8 = 1;
/// A subscriber gets all but the Redis messages.
const NO_MESSAGES: u8 = 2;

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
    /// How long the server's bytes are held before they go on, in
    /// milliseconds.
    delay_ms: AtomicU64,
    /// What to drop of what is sent to connections whose first
    /// subscription comes while this is set (read then, once): [`HEARING`],
    /// [`NO_NOTIFICATIONS`] or [`NO_MESSAGES`].
    deaf: AtomicU8,
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
            delay_ms: AtomicU64::new(0),
            deaf: AtomicU8::new(HEARING),
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

    /// From now on a connection whose client sends its first `LISTEN` gets
    /// every PostgreSQL message but the notifications
    /// (`NotificationResponse`): what a connection pooler in transaction
    /// mode does to a listener, which takes the `LISTEN` and delivers
    /// nothing. Connections that subscribed before this call keep theirs.
    pub fn drop_notifications(&self) {
        self.state.deaf.store(NO_NOTIFICATIONS, Ordering::SeqCst);
    }

    /// From now on a connection whose client sends its first `SUBSCRIBE`
    /// gets the confirmation and nothing that holds a Redis `message`:
    /// a subscription the server confirms and that delivers nothing.
    /// Connections that subscribed before this call keep theirs.
    pub fn drop_messages(&self) {
        self.state.deaf.store(NO_MESSAGES, Ordering::SeqCst);
    }

    /// Delivers again what was held back, and what comes next.
    pub fn thaw(&self) {
        self.state.frozen.store(false, Ordering::SeqCst);
    }

    /// From now on the server's bytes reach every client `delay` (at most
    /// an hour) after they came, in the order they came: what a distant
    /// server's round trip adds. Bytes already on their way when
    /// subscribers are frozen still arrive.
    pub fn delay_replies(&self, delay: Duration) {
        let ms = u64::try_from(delay.min(Duration::from_secs(3600)).as_millis()).unwrap_or(u64::MAX);
        self.state.delay_ms.store(ms, Ordering::SeqCst);
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
    // Set as the client subscribes, to what was to be dropped then.
    let deaf = Arc::new(AtomicU8::new(HEARING));
    let (client_in, mut server_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let (up_state, up_subscriber, up_deaf) = (Arc::clone(state), Arc::clone(&subscriber), Arc::clone(&deaf));
    std::thread::spawn(move || {
        pump(client_in, &up_state, |bytes| {
            let subscribes =
                contains(bytes, b"SUBSCRIBE") || contains(bytes, b"subscribe") || contains(bytes, b"LISTEN");
            if subscribes && !up_subscriber.swap(true, Ordering::SeqCst) {
                up_deaf.store(up_state.deaf.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            server_out.write_all(bytes).is_ok()
        });
        let _ = server_out.shutdown(Shutdown::Both);
    });
    // The server's bytes go through a line that delivers each chunk when
    // it is due, so that a delay adds to each reply's time, not to the
    // queue's.
    let (line, due) = mpsc::channel::<(Instant, Vec<u8>)>();
    let down_state = Arc::clone(state);
    std::thread::spawn(move || {
        // Once the client sent `LISTEN`, the server's bytes start at a
        // message boundary (the client waited for the answers before).
        let mut messages = Vec::new();
        pump(server, &Arc::clone(&down_state), |chunk| {
            // Hold the bytes (and the connection) while frozen.
            while down_state.frozen.load(Ordering::SeqCst) && subscriber.load(Ordering::SeqCst) {
                if down_state.closed.load(Ordering::SeqCst) {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let chunk = match deaf.load(Ordering::SeqCst) {
                NO_NOTIFICATIONS => {
                    messages.extend_from_slice(chunk);
                    without_notifications(&mut messages)
                }
                // (Whole chunks: a message on loopback, a few dozen bytes,
                // comes in one read.)
                NO_MESSAGES if contains(chunk, b"$7\r\nmessage\r\n") => return true,
                _ => chunk.to_vec(),
            };
            let delay = Duration::from_millis(down_state.delay_ms.load(Ordering::SeqCst));
            line.send((Instant::now() + delay, chunk)).is_ok()
        });
    });
    let delivering = Arc::clone(state);
    std::thread::spawn(move || deliver(&due, client, &delivering));
}

/// Writes each chunk to `to` when it is due, until the line or `to`
/// closes, or the proxy is dropped.
fn deliver(due: &mpsc::Receiver<(Instant, Vec<u8>)>, mut to: TcpStream, state: &State) {
    while let Ok((at, chunk)) = due.recv() {
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        if state.closed.load(Ordering::SeqCst) || to.write_all(&chunk).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

/// Hands what `from` sends to `forward`, chunk by chunk, until `from`
/// closes, the proxy is dropped, or `forward` says stop.
fn pump(mut from: TcpStream, state: &State, mut forward: impl FnMut(&[u8]) -> bool) {
    let _ = from.set_read_timeout(Some(Duration::from_millis(100)));
    let mut buffer = [0; 16 * 1024];
    while !state.closed.load(Ordering::SeqCst) {
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                if !forward(&buffer[..n]) {
                    break;
                }
            }
            Err(err)
                if matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = from.shutdown(Shutdown::Both);
}

/// The whole PostgreSQL messages at the front of `buffer`, taken out of
/// it, but for the notifications (`A`); a message not whole yet stays.
fn without_notifications(buffer: &mut Vec<u8>) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut at = 0;
    while let Some(header) = buffer.get(at..at + 5) {
        let length = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let end = at + 1 + length;
        if end > buffer.len() {
            break;
        }
        if header[0] != b'A' {
            kept.extend_from_slice(&buffer[at..end]);
        }
        at = end;
    }
    buffer.drain(..at);
    kept
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}
