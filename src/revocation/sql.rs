//! For revocation stores kept in a SQL database, whose integers are signed
//! 64-bit: reading one check's state in one statement, with the rule every
//! such store keeps for a lost generation. The PostgreSQL and SQLite stores
//! are built on it.

use std::future::Future;

use super::{CorruptKind, LoginState, RevocationState, StoreError};

/// One check's state as a SQL store reads it in one statement (one
/// snapshot): the user's epoch (`NULL` if the user was never revoked),
/// whether the session is on the denylist, the last global logout's cutoff
/// (`NULL` if there was none) and the store's generation (`NULL` if it has
/// none: a new store, or one whose rows were deleted under it).
pub type StateRow = (Option<i64>, bool, Option<i64>, Option<i64>);

/// How long past its expiry a denylist entry is kept before a revocation
/// deletes it: one day. An entry past its expiry protects nothing while
/// the clocks agree (the session's token is refused as expired), but a
/// clock that jumps ahead (a bad NTP step, a host resumed with the wrong
/// time) would otherwise let one revocation delete every entry that
/// expires within the jump, and bring those sessions back once the clock
/// is put right. A jump of up to a day deletes nothing that still counts.
pub const DENYLIST_PURGE_GRACE_SECS: u64 = 86_400;

/// How many expired denylist entries one revocation deletes at the most.
/// After a quiet spell (or a burst of logouts a day ago) many may have
/// expired at once: deleting them all in the revocation's statement could
/// take longer than the store's timeout, and a statement cut off by the
/// server's `statement_timeout` would be retried with the same backlog,
/// failing every logout until someone deleted them by hand. Each
/// revocation takes its share instead.
pub const DENYLIST_PURGE_BATCH: u64 = 1_000;

/// A counter or a time as a SQL `BIGINT`; values beyond `i64::MAX`, which
/// no epoch or time reaches, are stored as `i64::MAX`.
///
/// ```
/// assert_eq!(sealed_session::sql::to_sql(7), 7);
/// assert_eq!(sealed_session::sql::to_sql(u64::MAX), i64::MAX);
/// ```
#[must_use]
pub fn to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A counter or a time read from a SQL `BIGINT`.
///
/// # Errors
/// [`StoreError::Corrupt`] with [`CorruptKind::NegativeValue`] for a
/// negative value, which the store never writes.
pub fn from_sql(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(CorruptKind::NegativeValue(value)))
}

/// Reads one check's state with `read`. A row without a generation means
/// the store's data is gone: `start_generation` starts a new one (which
/// refuses every session issued until then) and the row is read again.
///
/// # Errors
/// Any error of `read` or `start_generation`; [`StoreError::Corrupt`] for a
/// negative value, or ([`CorruptKind::GenerationVanishes`]) when the
/// generation is missing again right after it was started.
pub async fn read_state<R, G>(
    mut read: impl FnMut() -> R,
    mut start_generation: impl FnMut() -> G,
) -> Result<RevocationState, StoreError>
where
    R: Future<Output = Result<StateRow, StoreError>>,
    G: Future<Output = Result<(), StoreError>>,
{
    for _ in 0..2 {
        let (epoch, denied, revoked_through, generation) = read().await?;
        let Some(generation) = generation else {
            start_generation().await?;
            continue;
        };
        let revoked_through = revoked_through.map(from_sql).transpose()?.unwrap_or(0);
        return Ok(RevocationState {
            user_epoch: epoch.map(from_sql).transpose()?.unwrap_or(0),
            session_revoked: denied,
            revoked_through: revoked_through.max(from_sql(generation)?),
        });
    }
    Err(StoreError::Corrupt(CorruptKind::GenerationVanishes))
}

impl From<RevocationState> for LoginState {
    /// The part of a check's state a login needs.
    fn from(state: RevocationState) -> Self {
        Self { user_epoch: state.user_epoch, revoked_through: state.revoked_through }
    }
}

/// One [`SessionRecord`](crate::SessionRecord) as a SQL row: session ID
/// (16 bytes), user, epoch, created, last seen, expiry, user-agent label,
/// remembered, device-bound.
pub type RecordRow = (Vec<u8>, String, i64, i64, i64, i64, String, bool, bool);

/// The record a [`RecordRow`] holds.
///
/// # Errors
/// [`StoreError::Corrupt`]: [`CorruptKind::BadRecord`] for a session ID
/// that is not 16 bytes, [`CorruptKind::NegativeValue`] for a negative
/// time or epoch.
pub fn record_from_row(row: RecordRow) -> Result<crate::SessionRecord, StoreError> {
    let (id, user_id, epoch, created_at, last_seen, expires_at, user_agent, remembered, device_bound) = row;
    let id = <[u8; 16]>::try_from(id.as_slice()).map_err(|_| StoreError::Corrupt(CorruptKind::BadRecord))?;
    Ok(crate::SessionRecord {
        id: crate::SessionId::from_bytes(id),
        user_id,
        epoch: from_sql(epoch)?,
        created_at: from_sql(created_at)?,
        last_seen: from_sql(last_seen)?,
        expires_at: from_sql(expires_at)?,
        user_agent,
        remembered,
        device_bound,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn run(rows: &[StateRow]) -> (Result<RevocationState, StoreError>, usize, usize) {
        let (reads, starts) = (Cell::new(0), Cell::new(0));
        let result = pollster::block_on(read_state(
            || {
                let row = rows.get(reads.get()).copied().unwrap();
                reads.set(reads.get() + 1);
                async move { Ok(row) }
            },
            || {
                starts.set(starts.get() + 1);
                async { Ok(()) }
            },
        ));
        (result, reads.get(), starts.get())
    }

    #[test]
    fn a_row_with_a_generation_is_the_state_and_the_cutoff_is_the_later_of_the_two() {
        let (state, reads, starts) = run(&[(Some(3), true, Some(100), Some(50))]);
        let expected = RevocationState { user_epoch: 3, session_revoked: true, revoked_through: 100 };
        assert_eq!((state.unwrap(), reads, starts), (expected, 1, 0));
        let (state, ..) = run(&[(None, false, Some(40), Some(50))]);
        assert_eq!(state.unwrap(), RevocationState { revoked_through: 50, ..RevocationState::default() });
        let (state, ..) = run(&[(None, false, None, Some(50))]);
        assert_eq!(state.unwrap().revoked_through, 50);
    }

    #[test]
    fn a_lost_generation_is_started_again_once_then_the_store_is_corrupt() {
        let (state, reads, starts) = run(&[(Some(1), false, None, None), (None, false, None, Some(9))]);
        assert_eq!((state.unwrap().revoked_through, reads, starts), (9, 2, 1));
        let (state, reads, starts) = run(&[(None, false, None, None), (None, false, None, None)]);
        assert!(matches!(state, Err(StoreError::Corrupt(CorruptKind::GenerationVanishes))));
        assert_eq!((reads, starts), (2, 2));
    }

    #[test]
    fn negative_values_are_corrupt_and_large_ones_saturate() {
        for row in [
            (Some(-1), false, None, Some(1)),
            (None, false, Some(-2), Some(1)),
            (None, false, None, Some(-3)),
        ] {
            assert!(matches!(run(&[row]).0, Err(StoreError::Corrupt(CorruptKind::NegativeValue(_)))));
        }
        assert_eq!(from_sql(i64::MAX).unwrap(), i64::MAX.unsigned_abs());
        assert_eq!(to_sql(u64::MAX), i64::MAX);
        assert_eq!(to_sql(5), 5);
    }

    #[test]
    fn a_login_takes_the_epoch_and_the_cutoff() {
        let state = RevocationState { user_epoch: 4, session_revoked: true, revoked_through: 8 };
        assert_eq!(LoginState::from(state), LoginState { user_epoch: 4, revoked_through: 8 });
    }
}
