//! A timer for any executor: a thread sleeps, then wakes the task. For the
//! rare waits of the core (a login in the second of a revocation cutoff)
//! and the conformance suite; the core has no async runtime of its own.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

struct Shared {
    done: bool,
    waker: Option<Waker>,
}

struct Timer {
    shared: Arc<Mutex<Shared>>,
}

impl Future for Timer {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut shared = self.shared.lock().unwrap_or_else(PoisonError::into_inner);
        if shared.done {
            return Poll::Ready(());
        }
        shared.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// Resolves after `duration`, on any executor. If no thread can be
/// started, resolves at once (callers check the time again).
pub(crate) fn sleep(duration: Duration) -> impl Future<Output = ()> + Send {
    let shared = Arc::new(Mutex::new(Shared { done: false, waker: None }));
    let timer = Arc::clone(&shared);
    let started = std::thread::Builder::new().name("sealed-session-timer".into()).spawn(move || {
        std::thread::sleep(duration);
        let mut shared = timer.lock().unwrap_or_else(PoisonError::into_inner);
        shared.done = true;
        if let Some(waker) = shared.waker.take() {
            waker.wake();
        }
    });
    if started.is_err() {
        shared.lock().unwrap_or_else(PoisonError::into_inner).done = true;
    }
    Timer { shared }
}
