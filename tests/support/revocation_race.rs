//! The race every shared store must win, run by the SQLite and Redis tests
//! (the memory store's test in `tests/revocation_memory.rs` uses threads):
//! two tasks check one token over and over while it is revoked, and no
//! check that began after the revocation returned may accept it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use sealed_session::{Revocation, RevocationStore, Verifier, VerifyError};

/// Checks per task.
const CHECKS: u64 = 100_000;

/// Runs the race on `verifier` with `token`, a session of `user`; panics if
/// a revoked token was accepted. Needs a multi-threaded tokio runtime.
pub(crate) async fn no_revoked_token_is_accepted_after_the_revocation_returned<S>(
    verifier: Verifier<S>,
    user: &str,
    token: String,
) where
    S: RevocationStore + 'static,
{
    let (verifier, token) = (Arc::new(verifier), Arc::new(token));
    let revoked = Arc::new(AtomicBool::new(false));
    let checks = Arc::new(AtomicU64::new(0));
    let checkers: Vec<_> = (0..2)
        .map(|_| {
            let (verifier, token, revoked, checks) =
                (verifier.clone(), token.clone(), revoked.clone(), checks.clone());
            tokio::spawn(async move {
                let mut accepted_after = 0;
                for i in 0..CHECKS {
                    let revoked_before = revoked.load(Ordering::SeqCst);
                    match verifier.open::<()>(&token).await {
                        Ok(_) if revoked_before => accepted_after += 1,
                        Ok(_) | Err(VerifyError::Revoked(Revocation::User)) => {}
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                    checks.fetch_add(1, Ordering::Relaxed);
                    // Cached checks never wait on I/O; let the store's own
                    // tasks run, as separate requests would.
                    if i % 64 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
                accepted_after
            })
        })
        .collect();
    while checks.load(Ordering::Relaxed) < CHECKS / 2 {
        tokio::task::yield_now().await;
    }
    verifier.logout_everywhere(user).await.unwrap();
    revoked.store(true, Ordering::SeqCst);
    for checker in checkers {
        assert_eq!(checker.await.unwrap(), 0, "a revoked token was accepted");
    }
}
