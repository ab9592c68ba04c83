//! The file: its tables, its durability settings and its generation, and
//! the queries every call runs.

use std::path::Path;

use rusqlite::{params, Connection, OpenFlags, OptionalExtension, TransactionBehavior};
use sealed_session::{next_cutoff, Clock, LoginState, RevocationState, StoreError};

use crate::error::SqliteOpenError;

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (
        key   TEXT PRIMARY KEY,
        value INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS user_epochs (
        user_id TEXT PRIMARY KEY,
        epoch   INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS denied_sessions (
        session_id BLOB PRIMARY KEY,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS denied_sessions_expiry ON denied_sessions (expires_at);
";

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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
    /// Reads the settings from `conn`.
    pub(crate) fn read(conn: &Connection) -> rusqlite::Result<Self> {
        let journal_mode: String = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0))?;
        let synchronous: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        let synchronous = match synchronous {
            0 => "OFF".to_owned(),
            1 => "NORMAL".to_owned(),
            2 => "FULL".to_owned(),
            3 => "EXTRA".to_owned(),
            other => other.to_string(),
        };
        Ok(Self { journal_mode: journal_mode.to_ascii_lowercase(), synchronous })
    }

    fn is_durable(&self) -> bool {
        self.journal_mode == "wal" && matches!(self.synchronous.as_str(), "FULL" | "EXTRA")
    }
}

pub(crate) fn sqlite_error(err: rusqlite::Error) -> StoreError {
    StoreError::unavailable(err)
}

fn to_db(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("value {value} does not fit SQLite's INTEGER")))
}

fn from_db(value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("negative value {value} in the store")))
}

pub(crate) fn now(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.unix_now()).unwrap_or(0)
}

/// Opens the file (creating it only if `create`), makes it durable and
/// gives it a generation.
pub(crate) fn initialise(
    path: &Path,
    clock: &dyn Clock,
    create: bool,
) -> Result<Connection, SqliteOpenError> {
    let sqlite = |source| SqliteOpenError::Sqlite { path: path.to_path_buf(), source };
    // A path is a path: no `file:` URI, whose parameters (immutable=1,
    // nolock=1) could hide other processes' revocations.
    let mut flags = OpenFlags::default();
    flags.remove(OpenFlags::SQLITE_OPEN_URI);
    if !create {
        if !path.exists() {
            return Err(SqliteOpenError::Missing { path: path.to_path_buf() });
        }
        flags.remove(OpenFlags::SQLITE_OPEN_CREATE);
    }
    let mut conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
    conn.pragma_update(None, "journal_mode", "WAL").map_err(sqlite)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(sqlite)?;
    let durability = Durability::read(&conn).map_err(sqlite)?;
    if !durability.is_durable() {
        return Err(SqliteOpenError::NotDurable {
            path: path.to_path_buf(),
            journal_mode: durability.journal_mode,
            synchronous: durability.synchronous,
        });
    }
    conn.execute_batch(SCHEMA).map_err(sqlite)?;
    ensure_generation(&mut conn, clock)
        .map_err(|source| SqliteOpenError::Generation { path: path.to_path_buf(), source })?;
    Ok(conn)
}

/// Reads the generation, starting a new one if the file has none (inside
/// the caller's transaction, if any).
fn generation(conn: &Connection, clock: &dyn Clock) -> Result<u64, StoreError> {
    let existing: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'generation'")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)).optional())
        .map_err(sqlite_error)?;
    if let Some(value) = existing {
        return from_db(value);
    }
    let started = now(clock);
    conn.execute("INSERT INTO meta (key, value) VALUES ('generation', ?1)", params![to_db(started)?])
        .map_err(sqlite_error)?;
    tracing::warn!(
        generation = started,
        "revocation store has no generation (new or lost file): starting one; every session issued until now is refused"
    );
    Ok(started)
}

/// Reads the generation, starting a new one if the file has none.
pub(crate) fn ensure_generation(conn: &mut Connection, clock: &dyn Clock) -> Result<u64, StoreError> {
    let tx = conn.transaction().map_err(sqlite_error)?;
    let generation = generation(&tx, clock)?;
    tx.commit().map_err(sqlite_error)?;
    Ok(generation)
}

/// The store's cutoff: the later of the last global logout and the
/// generation (a missing generation, after the rows were deleted under us,
/// is lost data: a new one starts).
fn cutoff(conn: &Connection, clock: &dyn Clock) -> Result<u64, StoreError> {
    let revoked_through: Option<i64> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'revoked_through'")
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)).optional())
        .map_err(sqlite_error)?;
    Ok(revoked_through.map(from_db).transpose()?.unwrap_or(0).max(generation(conn, clock)?))
}

fn epoch(conn: &Connection, user_id: &str) -> Result<u64, StoreError> {
    let epoch: Option<i64> = conn
        .prepare_cached("SELECT epoch FROM user_epochs WHERE user_id = ?1")
        .and_then(|mut statement| statement.query_row([user_id], |row| row.get(0)).optional())
        .map_err(sqlite_error)?;
    Ok(epoch.map(from_db).transpose()?.unwrap_or(0))
}

/// Everything one check needs, from one snapshot of the file.
pub(crate) fn read_state(
    conn: &mut Connection,
    clock: &dyn Clock,
    user_id: Option<&str>,
    session: &[u8; 16],
) -> Result<RevocationState, StoreError> {
    let tx = conn.transaction().map_err(sqlite_error)?;
    let session_revoked: bool = tx
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM denied_sessions WHERE session_id = ?1)")
        .and_then(|mut statement| statement.query_row([session.as_slice()], |row| row.get(0)))
        .map_err(sqlite_error)?;
    let user_epoch = user_id.map(|user| epoch(&tx, user)).transpose()?.unwrap_or(0);
    let revoked_through = cutoff(&tx, clock)?;
    tx.commit().map_err(sqlite_error)?;
    Ok(RevocationState { user_epoch, session_revoked, revoked_through })
}

pub(crate) fn login_state(
    conn: &mut Connection,
    clock: &dyn Clock,
    user_id: &str,
) -> Result<LoginState, StoreError> {
    let tx = conn.transaction().map_err(sqlite_error)?;
    let state = LoginState { user_epoch: epoch(&tx, user_id)?, revoked_through: cutoff(&tx, clock)? };
    tx.commit().map_err(sqlite_error)?;
    Ok(state)
}

pub(crate) fn revoke_user(conn: &mut Connection, user_id: &str) -> Result<u64, StoreError> {
    let epoch: i64 = conn
        .query_row(
            "INSERT INTO user_epochs (user_id, epoch) VALUES (?1, 1)
             ON CONFLICT (user_id) DO UPDATE SET epoch = epoch + 1
             RETURNING epoch",
            [user_id],
            |row| row.get(0),
        )
        .map_err(sqlite_error)?;
    from_db(epoch)
}

pub(crate) fn revoke_session(
    conn: &mut Connection,
    clock: &dyn Clock,
    session: &[u8; 16],
    expires_at: u64,
) -> Result<(), StoreError> {
    let now = now(clock);
    if expires_at <= now {
        return Err(StoreError::ExpiryNotInFuture { expires_at, now });
    }
    let tx = conn.transaction().map_err(sqlite_error)?;
    // Entries past their expiry protect nothing: the token is refused as expired.
    tx.execute("DELETE FROM denied_sessions WHERE expires_at <= ?1", [to_db(now)?]).map_err(sqlite_error)?;
    // Never shorten an entry: keep the later expiry.
    tx.execute(
        "INSERT INTO denied_sessions (session_id, expires_at) VALUES (?1, ?2)
         ON CONFLICT (session_id) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
        params![session.as_slice(), to_db(expires_at.min(i64::MAX as u64))?],
    )
    .map_err(sqlite_error)?;
    tx.commit().map_err(sqlite_error)
}

pub(crate) fn revoke_all(
    conn: &mut Connection,
    clock: &dyn Clock,
    issued_through: u64,
) -> Result<u64, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(sqlite_error)?;
    let next = next_cutoff(cutoff(&tx, clock)?, issued_through, now(clock));
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('revoked_through', ?1)
         ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
        [to_db(next)?],
    )
    .map_err(sqlite_error)?;
    tx.commit().map_err(sqlite_error)?;
    Ok(next)
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
