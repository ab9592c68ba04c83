//! A conformance suite for [`RevocationStore`] implementations (feature
//! `conformance`).
//!
//! Call [`run`] from a test of your store. It uses fresh random user and
//! session IDs, so it can run against a store that other tests share, and it
//! needs no particular async runtime.
//!
//! ```
//! # pollster::block_on(async {
//! sealed_session::conformance::run(&sealed_session::MemoryStore::new()).await;
//! # });
//! ```

// Test support: failing loudly is the point.
#![allow(clippy::expect_used, clippy::panic)]

use crate::revocation::RevocationStore;
use crate::session::Session;

fn fresh_user() -> String {
    format!("conformance-{}", Session::new(()).id().to_hex())
}

/// Runs every check; panics with a message naming the first that fails.
pub async fn run<S: RevocationStore>(store: &S) {
    unknown_users_and_sessions_are_not_revoked(store).await;
    user_epochs_count_up_by_one(store).await;
    users_are_independent(store).await;
    sessions_are_denylisted_individually(store).await;
    revoke_all_never_moves_back(store).await;
}

/// A user never revoked has epoch 0; a new session is not on the denylist.
pub async fn unknown_users_and_sessions_are_not_revoked<S: RevocationStore>(store: &S) {
    let user = fresh_user();
    let session = Session::new(()).id();
    assert_eq!(store.user_epoch(&user).await.ok(), Some(0), "a new user's epoch must be 0");
    let state = store.state(Some(&user), session).await.expect("state of a new user");
    assert_eq!(state.user_epoch, 0, "state: a new user's epoch must be 0");
    assert!(!state.session_revoked, "a new session must not be denylisted");
    let anonymous = store.state(None, session).await.expect("state without a user");
    assert!(!anonymous.session_revoked);
    assert_eq!(anonymous.user_epoch, 0, "a session without a user has epoch 0");
}

/// `revoke_user` returns 1, 2, 3… and `state` and `user_epoch` agree.
pub async fn user_epochs_count_up_by_one<S: RevocationStore>(store: &S) {
    let user = fresh_user();
    for expected in 1..=3 {
        assert_eq!(store.revoke_user(&user).await.ok(), Some(expected), "revoke_user must count up by one");
        assert_eq!(store.user_epoch(&user).await.ok(), Some(expected));
        let state = store.state(Some(&user), Session::new(()).id()).await.expect("state");
        assert_eq!(state.user_epoch, expected, "state must show the new epoch at once");
    }
}

/// Revoking one user leaves another untouched.
pub async fn users_are_independent<S: RevocationStore>(store: &S) {
    let (a, b) = (fresh_user(), fresh_user());
    store.revoke_user(&a).await.expect("revoke a");
    assert_eq!(store.user_epoch(&b).await.ok(), Some(0), "revoking one user must not touch another");
}

/// A denylisted session is revoked; its neighbours are not.
pub async fn sessions_are_denylisted_individually<S: RevocationStore>(store: &S) {
    let (revoked, other) = (Session::new(()).id(), Session::new(()).id());
    let until = u64::try_from(time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0) + 3600;
    store.revoke_session(revoked, until).await.expect("revoke_session");
    let state = store.state(None, revoked).await.expect("state");
    assert!(state.session_revoked, "a revoked session must be on the denylist at once");
    let user = fresh_user();
    assert!(store.state(Some(&user), revoked).await.expect("state").session_revoked);
    assert!(!store.state(None, other).await.expect("state").session_revoked, "other sessions stay valid");
}

/// `revoke_all` raises the bound and never lowers it.
pub async fn revoke_all_never_moves_back<S: RevocationStore>(store: &S) {
    // A bound in 2001 revokes nothing that other tests of a shared store use.
    const EARLY: u64 = 1_000_000_000;
    let before = store.state(None, Session::new(()).id()).await.expect("state").revoked_through;
    let target = before.max(EARLY);
    store.revoke_all(target).await.expect("revoke_all");
    let after = store.state(None, Session::new(()).id()).await.expect("state").revoked_through;
    assert!(after >= target, "revoke_all must take effect at once");
    store.revoke_all(target - 1).await.expect("revoke_all");
    let again = store.state(None, Session::new(()).id()).await.expect("state").revoked_through;
    assert!(again >= target, "revoke_all must never move the bound earlier");
}
