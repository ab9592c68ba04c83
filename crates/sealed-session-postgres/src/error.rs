//! Why a PostgreSQL store could not be set up.

use sealed_session::StoreError;

/// The PostgreSQL store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresSetupError {
    /// The URL is not `postgres://…` or `postgresql://…`.
    #[error("not a PostgreSQL store URL: expected postgres://USER[:PASSWORD]@HOST:PORT/DATABASE")]
    Url,
    /// The URL has a query parameter the store does not pass on (sqlx
    /// would log it, value and all, and ignore it), one twice, or a
    /// fragment. It is not repeated: it may hold a secret.
    #[error(
        "a PostgreSQL URL parameter that is unknown or secret and unused (sslpassword), given twice, or a \
         `#` fragment (sqlx reads: sslmode, sslrootcert, sslcert, sslkey, statement-cache-capacity, host, \
         hostaddr, port, dbname, user, password, application_name, options; libpq's other settings are \
         accepted and ignored); it is not repeated here, as it may hold a secret"
    )]
    UrlParameter,
    /// The URL asks for TLS (`sslmode=require`, `verify-ca` or
    /// `verify-full`, or a certificate or key file such as `sslrootcert`),
    /// which this build's PostgreSQL client does not have.
    #[error(
        "this build connects to PostgreSQL without TLS, and the URL requires it (an sslmode that needs \
         TLS, or a certificate or key file); keep the database on loopback or a private network, or put a \
         TLS tunnel in front of it"
    )]
    TlsUnavailable,
    /// A libpq environment variable asks for TLS (`PGSSLMODE` of
    /// `require`, `verify-ca`, `verify-full` or a value sqlx does not
    /// recognise; a file only TLS reads, such as `PGSSLROOTCERT`;
    /// `PGSSLCERTMODE=require`) and the URL names no `sslmode` of its own:
    /// this build's PostgreSQL client has no TLS.
    #[error(
        "this build connects to PostgreSQL without TLS, and {variable} in the environment asks for it; \
         unset it for this process (or set sslmode=disable in the URL on purpose), and keep the database \
         on loopback or a private network, or put a TLS tunnel in front of it"
    )]
    TlsFromEnvironment {
        /// The environment variable.
        variable: &'static str,
    },
    /// The URL or the environment demands a protection libpq gives and
    /// this client does not (`gssencmode=require`,
    /// `channel_binding=require`, `requirepeer`, or `PGGSSENCMODE`,
    /// `PGCHANNELBINDING`, `PGREQUIREPEER`, or a service, `PGSERVICE` (its
    /// name) or `PGSERVICEFILE`, whose file may hold any of them): it would
    /// connect without it.
    #[error(
        "the URL or the environment sets {setting}, which this PostgreSQL client does not enforce: it would \
         connect without that protection; remove the setting, and keep the database on loopback or a \
         private network"
    )]
    Unenforced {
        /// The libpq setting or environment variable.
        setting: &'static str,
    },
    /// [`PostgresOptions::existing_only`](crate::PostgresOptions::existing_only),
    /// and no server has set up a store here: no generation in this
    /// database's tables of the prefix.
    #[error(
        "no server has used a revocation store here (no generation in {prefix}_meta in this database and \
         schema): check the URL's database and the prefix the servers use"
    )]
    NotInUse {
        /// The table prefix looked under.
        prefix: String,
    },
    /// The table prefix is not a plain lowercase identifier.
    #[error(
        "table prefix {0:?} is not a plain identifier: use lowercase letters, digits and _, starting with a \
         letter, at most 40 bytes"
    )]
    Prefix(String),
    /// The database could not be reached or refused the login.
    #[error("cannot connect to PostgreSQL: {0}")]
    Connect(#[source] sqlx::Error),
    /// The tables could not be created.
    #[error("cannot create the revocation tables (may the user CREATE in the schema?): {0}")]
    Migrate(#[source] sqlx::Error),
    /// The database may lose committed transactions in a crash (`fsync`
    /// off, or `synchronous_commit` off for the store's connections), and
    /// with them acknowledged revocations.
    #[error(
        "PostgreSQL runs with fsync = {fsync} and synchronous_commit = {synchronous_commit}: a crash could \
         lose acknowledged revocations and bring revoked sessions back; set fsync = on and \
         synchronous_commit = on (or local, remote_write, remote_apply) for the store's role or database"
    )]
    NotDurable {
        /// The `fsync` setting, as the server reports it.
        fsync: String,
        /// The `synchronous_commit` setting of the store's connection.
        synchronous_commit: String,
    },
    /// The store's tables are found in one schema (the first on the
    /// connection's `search_path` that holds them), while it would create
    /// missing ones in another (the first on the path, `current_schema()`):
    /// say a schema named after the role was created in front of `public`.
    /// Servers would then keep revocations in two sets of tables apart.
    #[error(
        "the revocation tables are in schema {tables}, but this connection would create them in schema \
         {current} (the first of its search_path): servers would keep revocations apart; put {tables} first \
         on the store's search_path (or move the tables), or use another prefix"
    )]
    SchemaMismatch {
        /// The schema that holds the tables.
        tables: String,
        /// The schema new tables would be created in.
        current: String,
    },
    /// A table of the store's is `UNLOGGED` (or temporary): a crash of the
    /// database empties it, while the generation would stay and vouch for
    /// what is left, so revoked sessions would come back (or, for the
    /// session registry's table, live sessions would go unlisted and
    /// uncounted by a session limit).
    #[error(
        "the store's table {table} is UNLOGGED: a crash of PostgreSQL empties it and would bring revoked \
         sessions back, or leave live ones out of the session registry; run ALTER TABLE {table} SET LOGGED"
    )]
    Unlogged {
        /// The table's name.
        table: String,
    },
    /// The database is a standby (in recovery), or its transactions are
    /// read-only (`transaction_read_only`, as on an old primary fenced
    /// after a failover): its data may lag the primary's revocations, and
    /// it takes none.
    #[error(
        "the PostgreSQL server is a standby or read-only (pg_is_in_recovery, transaction_read_only): its data \
         may lag the primary's revocations; connect the store to the primary"
    )]
    Standby,
    /// The store's generation could not be read or written.
    #[error("cannot read or start the store's generation: {0}")]
    Generation(#[source] StoreError),
    /// [`PostgresOptions::cache_ttl`](crate::PostgresOptions::cache_ttl) is
    /// longer than [`MAX_CACHE_TTL`](sealed_session::MAX_CACHE_TTL) (1 s),
    /// the staleness bound the documentation promises.
    #[error(
        "cache TTL {0:?} is longer than the 1 s a revocation may go unseen when an invalidation is lost: \
         use at most 1 s (or zero, for no cache)"
    )]
    CacheTtl(std::time::Duration),
    /// There is no tokio runtime to run on.
    #[error("the PostgreSQL store needs a tokio runtime with the time and I/O drivers enabled")]
    Runtime,
}
