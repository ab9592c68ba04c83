//! The store's tables, its durability settings and generation, and the
//! statements every call runs: each one statement, or one `BEGIN IMMEDIATE`
//! transaction, so that every call is atomic.

use sealed_session::registry::MAX_RECORDS_PER_USER;
use sealed_session::sql::{self, from_sql, to_sql};
use sealed_session::{next_cutoff, Clock, LoginState, RevocationState, SessionRecord, StoreError};
use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqlitePool;
use sqlx::{Connection as _, Sqlite, SqliteConnection};

/// The tables, named so that they sit beside an application's own.
const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS sealed_session_meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS sealed_session_user_epochs (
        user_id TEXT PRIMARY KEY,
        epoch   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS sealed_session_denied (
        session_id BLOB PRIMARY KEY,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS sealed_session_denied_expiry ON sealed_session_denied (expires_at);
    CREATE TABLE IF NOT EXISTS sealed_session_sessions (
        user_id      TEXT    NOT NULL,
        session_id   BLOB    NOT NULL,
        epoch        INTEGER NOT NULL,
        created_at   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        user_agent   TEXT    NOT NULL,
        remembered   INTEGER NOT NULL,
        device_bound INTEGER NOT NULL,
        PRIMARY KEY (user_id, session_id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS sealed_session_sessions_expiry ON sealed_session_sessions (expires_at);
";

/// The durability settings a connection runs with, as SQLite reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Durability {
    /// `PRAGMA journal_mode`: `wal` for a store.
    pub journal_mode: String,
    /// `PRAGMA synchronous`, by name: `FULL` for a store.
    pub synchronous: String,
}

impl Durability {
    /// Reads the settings of one of the pool's connections.
    pub(crate) async fn read(pool: &SqlitePool) -> Result<Self, sqlx::Error> {
        let mut conn = pool.acquire().await?;
        let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&mut *conn).await?;
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await?;
        let synchronous = match synchronous {
            0 => "OFF".to_owned(),
            1 => "NORMAL".to_owned(),
            2 => "FULL".to_owned(),
            3 => "EXTRA".to_owned(),
            other => other.to_string(),
        };
        Ok(Self { journal_mode: journal_mode.to_ascii_lowercase(), synchronous })
    }

    pub(crate) fn is_durable(&self) -> bool {
        self.journal_mode == "wal" && matches!(self.synchronous.as_str(), "FULL" | "EXTRA")
    }
}

/// A connection of `pool` to write a revocation on, once it is known to
/// commit durably. `synchronous` is a setting of each connection, and an
/// application that shares its pool ([`SqliteStore::with_pool`](crate::SqliteStore::with_pool))
/// can lower it on one after the store checked at start: such a connection
/// is refused ([`StoreError::Untrusted`]), and the revocation with it.
async fn durable_connection(pool: &SqlitePool) -> Result<PoolConnection<Sqlite>, StoreError> {
    durable_connection_for(pool, "revocation refused").await
}

/// [`durable_connection`] for another write, named by what `refused` says.
async fn durable_connection_for(
    pool: &SqlitePool,
    refused: &'static str,
) -> Result<PoolConnection<Sqlite>, StoreError> {
    let mut conn = pool.acquire().await.map_err(sqlite_error)?;
    match lowered_synchronous(&mut conn).await.map_err(sqlite_error)? {
        None => Ok(conn),
        Some(err) => {
            tracing::error!(error = %err, "{refused}");
            Err(StoreError::untrusted(err))
        }
    }
}

/// How `conn`'s `synchronous` is below `FULL`, if it is: what it writes, or
/// copies from the write-ahead log into the file, may be lost in a power
/// failure after it returned.
pub(crate) async fn lowered_synchronous(
    conn: &mut sqlx::SqliteConnection,
) -> Result<Option<crate::error::LoweredSynchronous>, sqlx::Error> {
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await?;
    let lowered = match synchronous {
        0 => "OFF",
        1 => "NORMAL",
        _ => return Ok(None),
    };
    Ok(Some(crate::error::LoweredSynchronous { synchronous: lowered }))
}

pub(crate) fn sqlite_error(err: sqlx::Error) -> StoreError {
    StoreError::unavailable(err)
}

pub(crate) fn now(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.unix_now()).unwrap_or(0)
}

/// The store's time for what dates the revocations: a clock at or before
/// 1970 would date it 0, where a generation refuses nothing and a global
/// logout moves no cutoff yet returns as if it had. Every such call fails
/// until the clock is fixed.
fn revocation_time(clock: &dyn Clock) -> Result<u64, StoreError> {
    u64::try_from(clock.unix_now())
        .ok()
        .filter(|&now| now > 0)
        .ok_or_else(|| StoreError::untrusted(sealed_session::ClockError))
}

/// Creates the tables if they are missing. If revocations were lost (the
/// file had been set up, it has the meta table, but a table of revocations
/// is gone: dropped), raises the cutoff in the same transaction, so that
/// no session they revoked opens again, and returns it.
pub(crate) async fn create_tables(pool: &SqlitePool, clock: &dyn Clock) -> Result<Option<u64>, StoreError> {
    let mut conn = durable_connection_for(pool, "setting up the revocation tables refused").await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(sqlite_error)?;
    let (set_up, revocation_tables): (bool, i64) = sqlx::query_as(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sealed_session_meta'),
                (SELECT count(*) FROM sqlite_master WHERE type = 'table'
                   AND name IN ('sealed_session_user_epochs', 'sealed_session_denied'))",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(sqlite_error)?;
    sqlx::raw_sql(SCHEMA).execute(&mut *tx).await.map_err(sqlite_error)?;
    let cutoff =
        if set_up && revocation_tables < 2 { Some(raise_cutoff(&mut tx, clock, 0).await?) } else { None };
    tx.commit().await.map_err(sqlite_error)?;
    Ok(cutoff)
}

/// Writes a generation if there is none; returns whether one began now.
pub(crate) async fn start_generation(pool: &SqlitePool, clock: &dyn Clock) -> Result<bool, StoreError> {
    let mut conn = durable_connection(pool).await?;
    let started = revocation_time(clock)?;
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO sealed_session_meta (key, value) VALUES ('generation', ?1)
         ON CONFLICT (key) DO NOTHING RETURNING value",
    )
    .bind(to_sql(started))
    .fetch_optional(&mut *conn)
    .await
    .map_err(sqlite_error)?;
    if inserted.is_some() {
        tracing::warn!(
            generation = started,
            "revocation store has no generation (new or lost file): starting one; every session issued until now is refused"
        );
    }
    Ok(inserted.is_some())
}

/// The query of the generation.
pub(crate) const GENERATION: &str = "SELECT value FROM sealed_session_meta WHERE key = 'generation'";

/// The generation (when the store was initialised).
pub(crate) async fn generation(pool: &SqlitePool) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> =
        sqlx::query_scalar(GENERATION).fetch_optional(pool).await.map_err(sqlite_error)?;
    value.map(from_sql).transpose()
}

/// Everything one check needs, from one statement (one snapshot), by the
/// rules of [`sql::read_state`] (a lost generation is started again).
pub(crate) async fn read_state(
    pool: &SqlitePool,
    clock: &dyn Clock,
    user_id: Option<&str>,
    session: &[u8; 16],
) -> Result<RevocationState, StoreError> {
    let read = || async {
        sqlx::query_as(
            "SELECT
               (SELECT epoch FROM sealed_session_user_epochs WHERE user_id = ?1),
               EXISTS (SELECT 1 FROM sealed_session_denied WHERE session_id = ?2),
               (SELECT value FROM sealed_session_meta WHERE key = 'revoked_through'),
               (SELECT value FROM sealed_session_meta WHERE key = 'generation')",
        )
        .bind(user_id)
        .bind(session.as_slice())
        .fetch_one(pool)
        .await
        .map_err(sqlite_error)
    };
    sql::read_state(read, || async { start_generation(pool, clock).await.map(drop) }).await
}

/// The user's epoch and the cutoff, as [`read_state`] reads them.
pub(crate) async fn login_state(
    pool: &SqlitePool,
    clock: &dyn Clock,
    user_id: &str,
) -> Result<LoginState, StoreError> {
    Ok(read_state(pool, clock, Some(user_id), &[0; 16]).await?.into())
}

pub(crate) async fn revoke_user(pool: &SqlitePool, user_id: &str) -> Result<u64, StoreError> {
    let mut conn = durable_connection(pool).await?;
    let epoch: i64 = sqlx::query_scalar(
        "INSERT INTO sealed_session_user_epochs (user_id, epoch) VALUES (?1, 1)
         ON CONFLICT (user_id) DO UPDATE SET epoch = epoch + 1
         RETURNING epoch",
    )
    .bind(user_id)
    .fetch_one(&mut *conn)
    .await
    .map_err(sqlite_error)?;
    from_sql(epoch)
}

/// Denylists `session` until `expires_at`, or with `once` only if it is not
/// denylisted yet; returns whether the entry is this call's.
async fn deny(
    conn: &mut SqliteConnection,
    session: &[u8; 16],
    expires_at: u64,
    now: u64,
    once: bool,
) -> Result<bool, sqlx::Error> {
    // Entries past their expiry protect nothing: the token is refused as
    // expired. They are deleted a day later (`DENYLIST_PURGE_GRACE_SECS`),
    // so that a clock that jumps ahead deletes none that still counts; a
    // bounded batch each time (`DENYLIST_PURGE_BATCH`).
    sqlx::query(
        "DELETE FROM sealed_session_denied WHERE session_id IN (
           SELECT session_id FROM sealed_session_denied WHERE expires_at <= ?1 LIMIT ?2)",
    )
    .bind(to_sql(now.saturating_sub(sql::DENYLIST_PURGE_GRACE_SECS)))
    .bind(to_sql(sql::DENYLIST_PURGE_BATCH))
    .execute(&mut *conn)
    .await?;
    let insert = if once {
        // Replaces only an expired entry: an unexpired one is left as it
        // is, and the statement says it denied nothing.
        "INSERT INTO sealed_session_denied (session_id, expires_at) VALUES (?1, ?2)
         ON CONFLICT (session_id) DO UPDATE SET expires_at = excluded.expires_at
         WHERE sealed_session_denied.expires_at <= ?3"
    } else {
        // Never shorten an entry: keep the later expiry.
        "INSERT INTO sealed_session_denied (session_id, expires_at) VALUES (?1, ?2)
         ON CONFLICT (session_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)"
    };
    let mut query = sqlx::query(insert).bind(session.as_slice()).bind(to_sql(expires_at));
    if once {
        query = query.bind(to_sql(now));
    }
    Ok(query.execute(&mut *conn).await?.rows_affected() == 1)
}

/// [`RevocationStore::revoke_session`](sealed_session::RevocationStore::revoke_session)
/// with `once` false, [`revoke_session_once`](sealed_session::RevocationStore::revoke_session_once)
/// with `once` true, in one `BEGIN IMMEDIATE` transaction.
pub(crate) async fn revoke_session(
    pool: &SqlitePool,
    clock: &dyn Clock,
    session: &[u8; 16],
    expires_at: u64,
    once: bool,
) -> Result<bool, StoreError> {
    let mut conn = durable_connection(pool).await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(sqlite_error)?;
    // Read once the write lock is held: time spent waiting for it counts.
    let now = revocation_time(clock)?;
    if expires_at <= now {
        return Err(StoreError::ExpiryNotInFuture { expires_at, now });
    }
    let denied = deny(&mut tx, session, expires_at, now, once).await.map_err(sqlite_error)?;
    tx.commit().await.map_err(sqlite_error)?;
    Ok(denied)
}

pub(crate) async fn revoke_all(
    pool: &SqlitePool,
    clock: &dyn Clock,
    issued_through: u64,
) -> Result<u64, StoreError> {
    let mut conn = durable_connection(pool).await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await.map_err(sqlite_error)?;
    let next = raise_cutoff(&mut tx, clock, issued_through).await?;
    tx.commit().await.map_err(sqlite_error)?;
    Ok(next)
}

/// [`revoke_all`] within the transaction `tx`.
async fn raise_cutoff(
    tx: &mut SqliteConnection,
    clock: &dyn Clock,
    issued_through: u64,
) -> Result<u64, StoreError> {
    let (revoked_through, generation): (Option<i64>, Option<i64>) = sqlx::query_as(
        "SELECT (SELECT value FROM sealed_session_meta WHERE key = 'revoked_through'),
                (SELECT value FROM sealed_session_meta WHERE key = 'generation')",
    )
    .fetch_one(&mut *tx)
    .await
    .map_err(sqlite_error)?;
    let current = from_sql(revoked_through.unwrap_or(0))?.max(from_sql(generation.unwrap_or(0))?);
    let next = next_cutoff(current, issued_through, revocation_time(clock)?);
    sqlx::query(
        "INSERT INTO sealed_session_meta (key, value) VALUES ('revoked_through', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
    )
    .bind(to_sql(next))
    .execute(&mut *tx)
    .await
    .map_err(sqlite_error)?;
    Ok(next)
}

/// Inserts or replaces a session's record, then drops the user's expired
/// records and the oldest beyond the bound, in one transaction.
pub(crate) async fn record_session(
    pool: &SqlitePool,
    record: &SessionRecord,
    now: u64,
) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(sqlite_error)?;
    sqlx::query(
        "INSERT INTO sealed_session_sessions
             (user_id, session_id, epoch, created_at, last_seen, expires_at, user_agent, remembered, device_bound)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (user_id, session_id) DO UPDATE SET
             epoch = excluded.epoch, created_at = excluded.created_at, last_seen = excluded.last_seen,
             expires_at = excluded.expires_at, user_agent = excluded.user_agent,
             remembered = excluded.remembered, device_bound = excluded.device_bound",
    )
    .bind(&record.user_id)
    .bind(&record.id.as_bytes()[..])
    .bind(to_sql(record.epoch))
    .bind(to_sql(record.created_at))
    .bind(to_sql(record.last_seen))
    .bind(to_sql(record.expires_at))
    .bind(&record.user_agent)
    .bind(record.remembered)
    .bind(record.device_bound)
    .execute(&mut *tx)
    .await
    .map_err(sqlite_error)?;
    // Every user's records expired a day ago (a user who never comes back
    // leaves none behind; a day, as for the denylist, so that a clock that
    // jumped ahead does not drop every user's live records), at most 1,000
    // a write so that no write holds the lock long (after a long stop,
    // say), and this user's expired records and oldest live ones beyond
    // the bound (expired ones do not count: they go anyway).
    sqlx::query(
        "DELETE FROM sealed_session_sessions WHERE (user_id, session_id) IN (
             SELECT user_id, session_id FROM sealed_session_sessions WHERE expires_at <= ?4 LIMIT 1000)
           OR (user_id = ?1 AND session_id NOT IN (
             SELECT session_id FROM sealed_session_sessions WHERE user_id = ?1 AND expires_at > ?2
             ORDER BY created_at DESC, session_id DESC LIMIT ?3))",
    )
    .bind(&record.user_id)
    .bind(to_sql(now))
    .bind(i64::try_from(MAX_RECORDS_PER_USER).unwrap_or(i64::MAX))
    .bind(to_sql(now.saturating_sub(sql::DENYLIST_PURGE_GRACE_SECS)))
    .execute(&mut *tx)
    .await
    .map_err(sqlite_error)?;
    tx.commit().await.map_err(sqlite_error)
}

/// Removes one record, or every record of the user (`id` `None`).
pub(crate) async fn remove_sessions(
    pool: &SqlitePool,
    user_id: &str,
    id: Option<&[u8]>,
) -> Result<(), StoreError> {
    let query = match id {
        Some(id) => sqlx::query("DELETE FROM sealed_session_sessions WHERE user_id = ?1 AND session_id = ?2")
            .bind(user_id)
            .bind(id),
        None => sqlx::query("DELETE FROM sealed_session_sessions WHERE user_id = ?1").bind(user_id),
    };
    query.execute(pool).await.map(drop).map_err(sqlite_error)
}

/// The user's records that have not expired at `now`, oldest first.
pub(crate) async fn list_sessions(
    pool: &SqlitePool,
    user_id: &str,
    now: u64,
) -> Result<Vec<SessionRecord>, StoreError> {
    let rows: Vec<sql::RecordRow> = sqlx::query_as(
        "SELECT session_id, user_id, epoch, created_at, last_seen, expires_at, user_agent, remembered, device_bound
         FROM sealed_session_sessions WHERE user_id = ?1 AND expires_at > ?2
         ORDER BY created_at, session_id",
    )
    .bind(user_id)
    .bind(to_sql(now))
    .fetch_all(pool)
    .await
    .map_err(sqlite_error)?;
    rows.into_iter().map(sql::record_from_row).collect()
}

#[cfg(test)]
mod tests {
    use super::Durability;

    #[test]
    fn only_wal_with_full_or_extra_sync_is_durable() {
        let durability = |journal_mode: &str, synchronous: &str| Durability {
            journal_mode: journal_mode.to_owned(),
            synchronous: synchronous.to_owned(),
        };
        assert!(durability("wal", "FULL").is_durable());
        assert!(durability("wal", "EXTRA").is_durable());
        for (journal, sync) in
            [("wal", "NORMAL"), ("wal", "OFF"), ("delete", "FULL"), ("memory", "FULL"), ("delete", "OFF")]
        {
            assert!(!durability(journal, sync).is_durable(), "{journal} {sync}");
        }
    }
}
