//! The tables and every statement the store runs, named from one prefix.

/// The statements of one store, with its table names filled in. Each
/// revocation notifies the channel in the same statement, so the message
/// goes out when, and only if, the write commits.
pub(crate) struct Statements {
    pub(crate) migrate: String,
    pub(crate) lost_tables: String,
    pub(crate) state: String,
    pub(crate) start_generation: String,
    /// The generation, if there is one.
    pub(crate) generation: String,
    pub(crate) revoke_user: String,
    pub(crate) revoke_session: String,
    pub(crate) revoke_session_once: String,
    pub(crate) revoke_all: String,
    /// [`Statements::revoke_all`] at the database's time, reading and
    /// writing the meta table alone, if a table of revocations is gone
    /// from the schema the meta table is in (no row if none is: a missing
    /// registry table, or a connection whose search path finds other
    /// tables, loses no revocation).
    pub(crate) cutoff_now: String,
    /// The name of a table of the store's that a crash would empty, if any.
    pub(crate) unlogged: String,
    /// The schema that holds the meta table, and the one tables are created
    /// in, if they differ.
    pub(crate) other_schema: String,
    pub(crate) channel: String,
    /// The session registry's statements.
    pub(crate) record_session: String,
    pub(crate) trim_sessions: String,
    pub(crate) purge_sessions: String,
    pub(crate) remove_session: String,
    pub(crate) remove_user_sessions: String,
    pub(crate) list_sessions: String,
}

/// Whether `prefix` is a plain SQL identifier: lowercase ASCII letters,
/// digits and `_`, starting with a letter, at most 40 bytes (so that every
/// table name stays within PostgreSQL's 63).
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    prefix.len() <= 40
        && prefix.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Whether a commit is on disk before it is acknowledged, by the settings
/// `fsync` and `synchronous_commit` (`local`, `remote_write` and
/// `remote_apply` flush locally as `on` does; `off` does not).
/// `full_page_writes` is not read: PostgreSQL allows it off on file systems
/// that never write half a page (ZFS), which the store cannot tell.
pub(crate) fn is_durable(fsync: &str, synchronous_commit: &str) -> bool {
    fsync == "on" && synchronous_commit != "off"
}

/// The SQL that creates the store's tables under `prefix` (which must be
/// valid): for applications that run their own migrations.
pub(crate) fn migration(prefix: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {prefix}_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {prefix}_user_epochs (user_id text PRIMARY KEY, epoch bigint NOT NULL);
CREATE TABLE IF NOT EXISTS {prefix}_denied (session_id bytea PRIMARY KEY, expires_at bigint NOT NULL);
CREATE INDEX IF NOT EXISTS {prefix}_denied_expiry ON {prefix}_denied (expires_at);
CREATE TABLE IF NOT EXISTS {prefix}_sessions (
  user_id text NOT NULL, session_id bytea NOT NULL, epoch bigint NOT NULL, created_at bigint NOT NULL,
  last_seen bigint NOT NULL, expires_at bigint NOT NULL, user_agent text NOT NULL,
  remembered boolean NOT NULL, device_bound boolean NOT NULL,
  PRIMARY KEY (user_id, session_id));
CREATE INDEX IF NOT EXISTS {prefix}_sessions_expiry ON {prefix}_sessions (expires_at);"
    )
}

/// The database's own clock, in whole Unix seconds.
const NOW: &str = "floor(extract(epoch from clock_timestamp()))::bigint";

/// Whether the server is not one to read revocations from: a standby (in
/// recovery), or a server whose transactions are read-only (an old primary
/// fenced after a failover with `default_transaction_read_only`, say), which
/// takes no revocations and whose data may lag the new primary's. The two
/// things libpq's `target_session_attrs=read-write` checks.
pub(crate) const NOT_PRIMARY: &str =
    "(pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on')";

/// A `FROM` item for every revocation: raises `synchronous_commit` from
/// `off` to `on` for this transaction alone (other values are kept), so
/// that the commit is on disk before it is acknowledged even on a
/// connection the application turned `off` after the store started
/// (a shared pool, `ALTER SYSTEM`, `ALTER ROLE`). The setting is read at
/// commit, after the statement ran.
const DURABLE_COMMIT: &str = "set_config('synchronous_commit',
           CASE current_setting('synchronous_commit') WHEN 'off' THEN 'on'
                ELSE current_setting('synchronous_commit') END, true)";

/// Whether a crash keeps what the store committed: `fsync` on, and the
/// store's tables neither `UNLOGGED` nor temporary (a crash empties an
/// unlogged table, while the generation, in another, would stay and vouch
/// for it). Read by every check, and by every revocation after it ran,
/// which fails if not (the revocation is in the database, but a crash
/// could lose it).
fn durable(prefix: &str) -> String {
    format!("(current_setting('fsync') = 'on' AND NOT EXISTS ({}))", unlogged(prefix))
}

/// The store's tables that a crash would empty (`UNLOGGED`, temporary).
/// The session registry's among them: emptied, it would leave every live
/// session unlisted (not to be ended from the device list) and uncounted
/// by a session limit. (Looked up by `to_regclass`: a store set up by an
/// application's own migrations may not have it.)
fn unlogged(prefix: &str) -> String {
    format!(
        "SELECT relname::text FROM pg_class WHERE relpersistence <> 'p' AND oid IN
           ('{prefix}_meta'::regclass, '{prefix}_user_epochs'::regclass, '{prefix}_denied'::regclass,
            to_regclass('{prefix}_sessions'))"
    )
}

/// A statement that puts `$1` on the denylist until `$2` (Unix seconds),
/// with `on_conflict` for an entry already there, refuses an expiry at or
/// before the time, drops other entries that expired a day ago or more
/// (`DENYLIST_PURGE_GRACE_SECS`: a database clock that jumps ahead deletes
/// none that still counts) and notifies `$3`. "The time" is the earlier of
/// the database's and the caller's (`$4`): a database clock ahead of the
/// servers' must neither refuse the logout of a session that still opens
/// for them nor take its entry for expired (a one-time token used again).
/// It answers that time, whether `$1` was written, how many entries were
/// dropped, and [`durable`]. An expired entry another
/// writer holds is left for a later purge: waiting for it could deadlock
/// two revocations (each holding an entry the other purges) or run out the
/// store's timeout.
fn deny(prefix: &str, channel: &str, on_conflict: &str) -> String {
    let grace = sealed_session::sql::DENYLIST_PURGE_GRACE_SECS;
    let batch = sealed_session::sql::DENYLIST_PURGE_BATCH;
    let durable = durable(prefix);
    format!(
        "WITH now AS (SELECT LEAST({NOW}, $4) AS t),
         denied AS (
           INSERT INTO {prefix}_denied (session_id, expires_at)
           SELECT $1, $2 FROM now WHERE $2 > now.t
           ON CONFLICT (session_id) {on_conflict}
           RETURNING 1),
         purged AS (
           DELETE FROM {prefix}_denied WHERE session_id IN (
             SELECT session_id FROM {prefix}_denied
             WHERE expires_at <= (SELECT t FROM now) - {grace} AND session_id <> $1
             LIMIT {batch} FOR UPDATE SKIP LOCKED)
           RETURNING 1)
         SELECT (SELECT t FROM now), EXISTS (SELECT 1 FROM denied), (SELECT count(*) FROM purged), {durable}
         FROM pg_notify('{channel}', $3), {DURABLE_COMMIT}"
    )
}

impl Statements {
    pub(crate) fn new(prefix: &str) -> Self {
        let channel = format!("{prefix}_revocations");
        let durable = durable(prefix);
        Self {
            migrate: migration(prefix),
            // In the schema the tables are created in (the first of the
            // search path), as `CREATE TABLE IF NOT EXISTS` looks there.
            lost_tables: format!(
                "SELECT EXISTS (SELECT 1 FROM pg_tables
                                WHERE schemaname = current_schema() AND tablename = '{prefix}_meta')
                   AND (SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
                          AND tablename IN ('{prefix}_user_epochs', '{prefix}_denied')) < 2"
            ),
            // Everything one check needs, in one round trip, whether the
            // database still writes its commits to disk (`fsync` can be
            // turned off by a reload while the store runs), and whether it
            // is a standby (a failover or a moved address sent the pool's
            // new connections to one, whose data may lag the primary's
            // revocations by any time) or read-only ([`NOT_PRIMARY`]).
            state: format!(
                "SELECT
                   (SELECT epoch FROM {prefix}_user_epochs WHERE user_id = $1),
                   EXISTS (SELECT 1 FROM {prefix}_denied WHERE session_id = $2),
                   (SELECT value FROM {prefix}_meta WHERE key = 'revoked_through'),
                   (SELECT value FROM {prefix}_meta WHERE key = 'generation'),
                   {durable},
                   {NOT_PRIMARY}"
            ),
            generation: format!("SELECT value FROM {prefix}_meta WHERE key = 'generation'"),
            // A row back means a generation began now.
            start_generation: format!(
                "INSERT INTO {prefix}_meta (key, value) VALUES ('generation', {NOW})
                 ON CONFLICT (key) DO NOTHING RETURNING value"
            ),
            revoke_user: format!(
                "WITH bumped AS (
                   INSERT INTO {prefix}_user_epochs (user_id, epoch) VALUES ($1, 1)
                   ON CONFLICT (user_id) DO UPDATE SET epoch = {prefix}_user_epochs.epoch + 1
                   RETURNING epoch)
                 SELECT bumped.epoch, {durable} FROM bumped, pg_notify('{channel}', $2), {DURABLE_COMMIT}"
            ),
            // Never shortens an entry.
            revoke_session: deny(
                prefix,
                &channel,
                &format!("DO UPDATE SET expires_at = GREATEST({prefix}_denied.expires_at, EXCLUDED.expires_at)"),
            ),
            // Replaces only an expired entry: an unexpired one is left as it
            // is, and the statement says it denied nothing. Concurrent
            // inserts of one ID wait for each other on its unique index.
            revoke_session_once: deny(
                prefix,
                &channel,
                &format!(
                    "DO UPDATE SET expires_at = EXCLUDED.expires_at
                     WHERE {prefix}_denied.expires_at <= (SELECT t FROM now)"
                ),
            ),
            // The later of the current cutoff and the database's time; the
            // time asked for counts only up to the database's, so that a
            // caller whose clock runs ahead cannot push the cutoff past it.
            revoke_all: format!(
                "WITH current AS (
                   SELECT GREATEST(
                     COALESCE((SELECT value FROM {prefix}_meta WHERE key = 'revoked_through'), 0),
                     COALESCE((SELECT value FROM {prefix}_meta WHERE key = 'generation'), 0)) AS c),
                 raised AS (
                   INSERT INTO {prefix}_meta (key, value)
                   SELECT 'revoked_through', GREATEST(LEAST($1, {NOW}), {NOW}, current.c) FROM current
                   ON CONFLICT (key) DO UPDATE SET value = GREATEST({prefix}_meta.value, EXCLUDED.value)
                   RETURNING value)
                 SELECT raised.value, {durable} FROM raised, pg_notify('{channel}', 'all'), {DURABLE_COMMIT}"
            ),
            cutoff_now: format!(
                "WITH home AS (
                   SELECT n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                   WHERE c.oid = to_regclass('{prefix}_meta')),
                 raised AS (
                   INSERT INTO {prefix}_meta (key, value)
                   SELECT 'revoked_through', {NOW} FROM home
                   WHERE (SELECT count(*) FROM pg_tables WHERE schemaname = home.schema
                            AND tablename IN ('{prefix}_user_epochs', '{prefix}_denied')) < 2
                   ON CONFLICT (key) DO UPDATE SET value = GREATEST({prefix}_meta.value, EXCLUDED.value)
                   RETURNING value)
                 SELECT raised.value FROM raised, pg_notify('{channel}', 'all'), {DURABLE_COMMIT}"
            ),
            unlogged: unlogged(prefix),
            other_schema: format!(
                "SELECT n.nspname::text, COALESCE(current_schema()::text, '(none)') FROM pg_class c
                   JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.oid = to_regclass('{prefix}_meta') AND n.nspname IS DISTINCT FROM current_schema()"
            ),
            channel,
            record_session: format!(
                "INSERT INTO {prefix}_sessions
                   (user_id, session_id, epoch, created_at, last_seen, expires_at, user_agent, remembered, device_bound)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (user_id, session_id) DO UPDATE SET
                   epoch = EXCLUDED.epoch, created_at = EXCLUDED.created_at, last_seen = EXCLUDED.last_seen,
                   expires_at = EXCLUDED.expires_at, user_agent = EXCLUDED.user_agent,
                   remembered = EXCLUDED.remembered, device_bound = EXCLUDED.device_bound"
            ),
            // The user's expired records, and the oldest live ones beyond
            // the bound (expired ones do not count: they go anyway).
            trim_sessions: format!(
                "DELETE FROM {prefix}_sessions WHERE user_id = $1 AND (expires_at <= $2 OR session_id NOT IN (
                   SELECT session_id FROM {prefix}_sessions WHERE user_id = $1 AND expires_at > $2
                   ORDER BY created_at DESC, session_id DESC LIMIT $3))"
            ),
            // Other users' records expired by `$2` (a user who never comes
            // back leaves none behind; the caller gives a time a day before
            // its own): a bounded batch, skipping rows another writer holds
            // (waiting for them could deadlock two logins).
            purge_sessions: format!(
                "DELETE FROM {prefix}_sessions WHERE (user_id, session_id) IN (
                   SELECT user_id, session_id FROM {prefix}_sessions
                   WHERE expires_at <= $2 AND user_id <> $1
                   LIMIT 1000 FOR UPDATE SKIP LOCKED)"
            ),
            remove_session: format!("DELETE FROM {prefix}_sessions WHERE user_id = $1 AND session_id = $2"),
            remove_user_sessions: format!("DELETE FROM {prefix}_sessions WHERE user_id = $1"),
            list_sessions: format!(
                "SELECT session_id, user_id, epoch, created_at, last_seen, expires_at, user_agent, remembered,
                        device_bound
                 FROM {prefix}_sessions WHERE user_id = $1 AND expires_at > $2
                 ORDER BY created_at, session_id"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commits_flushed_before_they_are_acknowledged_are_durable() {
        for synchronous_commit in ["on", "local", "remote_write", "remote_apply"] {
            assert!(is_durable("on", synchronous_commit), "{synchronous_commit}");
            assert!(!is_durable("off", synchronous_commit), "fsync off, {synchronous_commit}");
        }
        assert!(!is_durable("on", "off"));
    }

    #[test]
    fn prefixes_are_plain_identifiers() {
        for good in ["sealed_session", "app2", "a"] {
            assert!(valid_prefix(good), "{good}");
        }
        for bad in ["", "2app", "App", "a-b", "a;drop table x", "a b", "ä", &"a".repeat(41)] {
            assert!(!valid_prefix(bad), "{bad}");
        }
        assert!(valid_prefix(&"a".repeat(40)));
    }

    #[test]
    fn statements_use_the_prefix_everywhere() {
        let statements = Statements::new("app");
        for sql in [
            &statements.migrate,
            &statements.state,
            &statements.revoke_all,
            &statements.revoke_session,
            &statements.revoke_session_once,
        ] {
            assert!(!sql.contains("sealed_session"), "{sql}");
            assert!(sql.contains("app_"), "{sql}");
        }
        assert_eq!(statements.channel, "app_revocations");
    }
}
