//! Settings, store URLs and the errors of connecting.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Settings of a [`RedisStore`](crate::RedisStore); every one has a safe
/// default, and most can also be given as URL query parameters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RedisConfig {
    /// Prefix of every key and of the channel; default `sealed-session`.
    /// One to 256 visible ASCII characters; no part of it after a `:` may
    /// be `user` or `registry`, where another store's keys (a store under a
    /// shorter prefix, in the same database) would be this one's. The
    /// channel is the server's, not the database's (Redis publishes across
    /// databases): stores under one prefix in two databases of one server
    /// (`/0` and `/1`, say staging and production) hear each other's
    /// invalidations, which empty their caches and name the users logged
    /// out. Give each deployment its own prefix.
    pub prefix: String,
    /// How long a command may take before the check fails closed; default
    /// 250 ms. A call that finds Redis's settings unread since a failure
    /// first waits as long again, at most, for their check (four or five
    /// round trips, each given this long), which goes on when the call
    /// gives up: the calls after it are answered.
    pub timeout: Duration,
    /// The longest a cached answer is used, counted from before the read
    /// that produced it, even while the subscription is up; default 1 s,
    /// which is also the most ([`MAX_CACHE_TTL`](sealed_session::MAX_CACHE_TTL)).
    /// Zero turns the cache off.
    pub cache_ttl: Duration,
    /// When Redis cannot be reached, answer from cached data at most this
    /// old instead of refusing; never once Redis's settings were found
    /// unsafe (an eviction policy, no persistence), until they are fixed
    /// and a new cutoff is set. Default `None`: refuse (fail closed).
    pub accept_stale_for: Option<Duration>,
    /// Trust that Redis never evicts keys although its `maxmemory-policy`
    /// cannot be read: neither by `CONFIG GET` (managed services and ACL
    /// users without `+config` hide it) nor in `INFO memory` (which they
    /// usually answer). A policy that *can* be read, either way, must
    /// still be `noeviction`. Default false; URL: `assume_noeviction=true`.
    pub assume_noeviction: bool,
    /// Trust that Redis never restarts from an older copy of its data
    /// although its persistence settings cannot be read. Settings that
    /// *can* be read must still be safe: `appendonly yes` with
    /// `appendfsync always`, or no persistence at all (`appendonly no`,
    /// `save ""` and `rdb-del-sync-files yes`). Default false; URL:
    /// `assume_durable=true`.
    pub assume_durable: bool,
    /// How often the eviction policy and persistence settings are read
    /// again (they are also read after every reconnection); default 30 s,
    /// at most 60 s.
    pub policy_check_interval: Duration,
    /// Replicas that must acknowledge each revocation (`WAIT`) before it is
    /// reported as done. Default `None`: 0 for a single server, 1 through
    /// Sentinel. URL: `wait_replicas=N`.
    pub wait_replicas: Option<u64>,
    /// How long a revocation waits for its replicas; default 500 ms. URL:
    /// `wait_timeout_ms=N`.
    pub wait_timeout: Duration,
    /// PEM file of the certificate authorities to trust for TLS
    /// (`rediss://`), instead of the system's. URL: `ca_file=PATH`.
    pub ca_file: Option<PathBuf>,
    /// Open only a store a server has set up (it has a generation under
    /// the prefix), and write nothing to one that is not
    /// ([`ConnectError::NotInUse`]): for tools that act on the servers'
    /// store, where a new empty one means a wrong URL. Default false.
    pub existing_only: bool,
}

/// The longest [`RedisConfig::policy_check_interval`] accepted.
pub const MAX_POLICY_CHECK_INTERVAL: Duration = Duration::from_secs(60);

sealed_session::option_setters! {
    RedisConfig {
        with_prefix(prefix: impl Into<String>),
        with_timeout(timeout: Duration),
        with_cache_ttl(cache_ttl: Duration),
        with_stale_answers_for(accept_stale_for: Option<Duration>),
        with_assume_noeviction(assume_noeviction: bool),
        with_assume_durable(assume_durable: bool),
        with_existing_only(existing_only: bool),
    }
}

impl RedisConfig {
    /// Sets [`RedisConfig::policy_check_interval`] (capped at 60 s; zero
    /// is refused when the store connects).
    #[must_use]
    pub fn with_policy_check_interval(mut self, interval: Duration) -> Self {
        self.policy_check_interval = interval.min(MAX_POLICY_CHECK_INTERVAL);
        self
    }

    /// Sets [`RedisConfig::wait_replicas`] and [`RedisConfig::wait_timeout`].
    #[must_use]
    pub fn with_wait_for_replicas(mut self, replicas: u64, timeout: Duration) -> Self {
        self.wait_replicas = Some(replicas);
        self.wait_timeout = timeout;
        self
    }

    /// Sets [`RedisConfig::ca_file`].
    #[must_use]
    pub fn with_ca_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.ca_file = Some(path.into());
        self
    }
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            prefix: "sealed-session".into(),
            timeout: Duration::from_millis(250),
            cache_ttl: Duration::from_secs(1),
            accept_stale_for: None,
            assume_noeviction: false,
            assume_durable: false,
            policy_check_interval: Duration::from_secs(30),
            wait_replicas: None,
            wait_timeout: Duration::from_millis(500),
            ca_file: None,
            existing_only: false,
        }
    }
}

/// The store could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL is not a Redis store URL.
    #[error(
        "not a Redis store URL ({0}): expected redis://[USER:PASSWORD@]HOST:PORT/DB, rediss://… for TLS, \
         or redis+sentinel://[USER:PASSWORD@]HOST:PORT[,HOST:PORT…]/SERVICE[/DB]"
    )]
    Url(String),
    /// [`RedisConfig::existing_only`], and no server has set up a store
    /// here: no generation under the prefix in this database.
    #[error(
        "no server has used a revocation store here (no {prefix}:generation key in this database): check \
         the URL's database number and the prefix the servers use"
    )]
    NotInUse {
        /// The key prefix looked under.
        prefix: String,
    },
    /// Redis could not be reached, refused the credentials, or failed the TLS handshake.
    #[error("cannot connect to Redis: {0}")]
    Redis(#[source] redis::RedisError),
    /// No sentinel named a reachable primary for the service.
    #[error("cannot find the Redis primary through Sentinel: {0}")]
    Sentinel(#[source] redis::RedisError),
    /// Redis may evict keys, which would silently undo revocations.
    #[error(
        "Redis maxmemory-policy is {0}; revocations need noeviction (CONFIG SET maxmemory-policy \
         noeviction, or the provider's parameter group)"
    )]
    EvictionPolicy(String),
    /// Redis would not say whether it may evict keys.
    #[error(
        "cannot read Redis maxmemory-policy ({0}), by CONFIG GET or in INFO memory; revocations need \
         noeviction. If the provider hides both and guarantees noeviction, say so: ?assume_noeviction=true in the URL \
         (RedisConfig::assume_noeviction)"
    )]
    EvictionPolicyUnknown(String),
    /// Redis persists its data in a way that a restart or a crash can roll
    /// back, bringing revoked sessions back: the message says which
    /// setting and what to set instead.
    #[error("{0}")]
    NotDurable(String),
    /// The server is a replica, not the primary: its answers may lag the
    /// primary's without end, and it refuses revocations.
    #[error(
        "the Redis server is a {0}, not the primary: its answers may miss revocations made on the primary, \
         and it refuses revocations; give the primary's address (or use Sentinel)"
    )]
    NotPrimary(String),
    /// The server is a Redis Cluster node, which the store does not
    /// support: a check reads several keys in one atomic step (a script),
    /// and a cluster spreads them over nodes.
    #[error(
        "the Redis server is a cluster node (cluster-enabled yes), which the store does not support: it \
         reads the keys of a check in one atomic step, and a cluster spreads them over several nodes; \
         give it a standalone Redis, with replicas and Sentinel for failover"
    )]
    Cluster,
    /// Redis would not say how it persists its data.
    #[error(
        "cannot read Redis persistence settings ({0}); revocations need appendonly yes with \
         appendfsync always, or no persistence at all. If the provider hides CONFIG and guarantees \
         that, say so: ?assume_durable=true in the URL (RedisConfig::assume_durable)"
    )]
    DurabilityUnknown(String),
    /// [`RedisConfig::prefix`] is empty, too long, or could name another
    /// store's keys.
    #[error(
        "key prefix {0:?} cannot be used: give 1 to 256 visible ASCII characters, with no part after a ':' \
         that is user or registry (a store under a shorter prefix keeps its keys there)"
    )]
    Prefix(String),
    /// [`RedisConfig::cache_ttl`] is longer than
    /// [`MAX_CACHE_TTL`](sealed_session::MAX_CACHE_TTL) (1 s), the
    /// staleness bound the documentation promises.
    #[error(
        "cache TTL {0:?} is longer than the 1 s a revocation may go unseen when an invalidation is lost: \
         use at most 1 s (or zero, for no cache)"
    )]
    CacheTtl(Duration),
    /// [`RedisConfig::policy_check_interval`] is zero or longer than
    /// [`MAX_POLICY_CHECK_INTERVAL`] (60 s), the bound the documentation
    /// gives for noticing an unsafe setting.
    #[error(
        "policy check interval {0:?} is zero or longer than 60 s: an unsafe Redis setting would go \
         unnoticed for longer than documented (or the check would never pause); use the default (30 s)"
    )]
    PolicyCheckInterval(Duration),
    /// [`RedisConfig::timeout`] is under 1 ms, or
    /// [`RedisConfig::wait_timeout`] is while revocations wait for
    /// replicas: every call (or every revocation) would fail as if Redis
    /// (or its replicas) were down.
    #[error(
        "the Redis store's {0} is under 1 ms: every call it bounds would fail at once; give at least \
         1 ms (or leave it out for the default)"
    )]
    TimeoutTooShort(&'static str),
    /// The CA file could not be read.
    #[error("cannot read the Redis CA file {path}: {source}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// [`RedisConfig::ca_file`] was given to
    /// [`RedisStore::with_client`](crate::RedisStore::with_client), whose
    /// client brings its own TLS settings.
    #[error(
        "ca_file is not used with RedisStore::with_client, whose client brings its own TLS settings: build \
         the client with the CA (redis::Client::build_with_tls), or connect by URL"
    )]
    CaFileWithClient,
    /// The Redis user may not publish on the revocation channel.
    #[error(
        "the Redis user may not publish or subscribe on the channel {0}: every revocation would be reported \
         failed and no server would hear of another's; allow the channel in the user's ACL (&{0})"
    )]
    ChannelDenied(String),
}

/// Where the store connects: one server, or the primary a set of
/// sentinels names.
#[derive(Clone)]
pub(crate) enum Target {
    /// A `redis://` or `rediss://` URL, without our parameters.
    Direct { url: String },
    /// The application's own client.
    Client(redis::Client),
    /// `redis+sentinel://` or `rediss+sentinel://`.
    Sentinel(SentinelTarget),
}

/// The primary a set of sentinels names, and how to reach both.
#[derive(Clone)]
pub(crate) struct SentinelTarget {
    /// Host and port of each sentinel.
    pub(crate) sentinels: Vec<(String, u16)>,
    /// The service (master) name the sentinels monitor.
    pub(crate) service: String,
    /// The database on the primary.
    pub(crate) db: i64,
    /// The user name on the primary.
    pub(crate) username: Option<String>,
    /// The password on the primary.
    pub(crate) password: Option<String>,
    /// The user name on the sentinels.
    pub(crate) sentinel_username: Option<String>,
    /// The password on the sentinels.
    pub(crate) sentinel_password: Option<String>,
    /// TLS to the sentinels and to the primary.
    pub(crate) tls: bool,
}

impl Target {
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            Target::Direct { url } => url.starts_with("rediss://"),
            Target::Client(client) => {
                matches!(client.get_connection_info().addr(), redis::ConnectionAddr::TcpTls { .. })
            }
            Target::Sentinel(target) => target.tls,
        }
    }
}

impl fmt::Debug for Target {
    /// Hosts and service only: no credentials.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Client(client) => f
                .debug_struct("Client")
                .field("addr", &format!("{}", client.get_connection_info().addr()))
                .finish(),
            Target::Direct { url } => {
                let host = url.split_once("://").map_or("", |(_, rest)| rest);
                let host = host.rsplit_once('@').map_or(host, |(_, host)| host);
                f.debug_struct("Direct").field("host", &host).finish()
            }
            Target::Sentinel(target) => f
                .debug_struct("Sentinel")
                .field("sentinels", &target.sentinels)
                .field("service", &target.service)
                .field("db", &target.db)
                .field("tls", &target.tls)
                .finish_non_exhaustive(),
        }
    }
}

/// A boolean query parameter's value.
fn flag(value: &str) -> Option<bool> {
    match value {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

/// Splits a store URL into where to connect and the settings its query
/// parameters give.
pub(crate) fn parse_url(url: &str, mut config: RedisConfig) -> Result<(Target, RedisConfig), ConnectError> {
    let bad = |why: &str| ConnectError::Url(why.to_owned());
    if url.contains('#') {
        // redis-rs reads a fragment (`#insecure` turns certificate checks off
        // where its feature is on): none passes.
        return Err(bad("a `#` fragment; escape a `#` in a password as %23"));
    }
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut seen = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| bad("a query parameter without a value"))?;
        // Which one would count is no guess to leave to a reader of the URL.
        if seen.contains(&key) {
            return Err(bad("a query parameter given twice"));
        }
        seen.push(key);
        let value = percent_decode(value).ok_or_else(|| bad("a badly escaped query parameter"))?;
        let number = || value.parse::<u64>().map_err(|_| bad("a query parameter that is not a number"));
        match key {
            "assume_noeviction" => {
                config.assume_noeviction =
                    flag(&value).ok_or_else(|| bad("assume_noeviction must be true or false"))?;
            }
            "assume_durable" => {
                config.assume_durable =
                    flag(&value).ok_or_else(|| bad("assume_durable must be true or false"))?;
            }
            "wait_replicas" => config.wait_replicas = Some(number()?),
            "wait_timeout_ms" => config.wait_timeout = Duration::from_millis(number()?),
            "timeout_ms" => config.timeout = Duration::from_millis(number()?),
            "ca_file" => config.ca_file = Some(PathBuf::from(value)),
            "sentinel_username" | "sentinel_password" if !base.contains("+sentinel://") => {
                return Err(bad("sentinel_username and sentinel_password need a redis+sentinel:// URL"));
            }
            "sentinel_username" | "sentinel_password" => {}
            // The key is not repeated: a `?` or `&` in an unescaped
            // password would make part of it a key.
            _ => {
                return Err(bad(
                    "an unknown query parameter (known: assume_noeviction, assume_durable, wait_replicas, \
                     wait_timeout_ms, timeout_ms, ca_file, sentinel_username, sentinel_password); escape a \
                     `?` or `&` in a password as %3F or %26",
                ))
            }
        }
    }
    let target = if base.starts_with("redis://") || base.starts_with("rediss://") {
        Target::Direct { url: base.to_owned() }
    } else if let Some(rest) =
        base.strip_prefix("redis+sentinel://").or_else(|| base.strip_prefix("rediss+sentinel://"))
    {
        parse_sentinel(rest, base.starts_with("rediss+"), query)?
    } else {
        return Err(bad("unknown scheme"));
    };
    if config.ca_file.is_some() && !target.is_tls() {
        return Err(bad("ca_file needs TLS: rediss:// or rediss+sentinel://"));
    }
    Ok((target, config))
}

fn parse_sentinel(rest: &str, tls: bool, query: &str) -> Result<Target, ConnectError> {
    let bad = |why: &str| ConnectError::Url(why.to_owned());
    let (userinfo, rest) = match rest.rsplit_once('@') {
        Some((userinfo, rest)) => (Some(userinfo), rest),
        None => (None, rest),
    };
    let (username, password) = match userinfo {
        None => (None, None),
        Some(info) => {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let decode = |s: &str| percent_decode(s).ok_or_else(|| bad("badly escaped credentials"));
            let user = (!user.is_empty()).then(|| decode(user)).transpose()?;
            let password = (!password.is_empty()).then(|| decode(password)).transpose()?;
            (user, password)
        }
    };
    let mut parts = rest.split('/');
    let hosts = parts.next().unwrap_or_default();
    let service = parts.next().filter(|s| !s.is_empty()).ok_or_else(|| bad("no Sentinel service name"))?;
    let db = match parts.next() {
        None | Some("") => 0,
        Some(db) => db.parse().map_err(|_| bad("the database is not a number"))?,
    };
    if parts.next().is_some() {
        return Err(bad("too many path segments"));
    }
    let sentinels = hosts
        .split(',')
        .map(|host| {
            let (name, port) = host.rsplit_once(':').unwrap_or((host, "26379"));
            let port = port.parse().map_err(|_| bad("a sentinel port is not a number"))?;
            if name.is_empty() {
                return Err(bad("an empty sentinel host"));
            }
            Ok((name.trim_start_matches('[').trim_end_matches(']').to_owned(), port))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sentinel_username = None;
    let mut sentinel_password = None;
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("sentinel_username", value)) => sentinel_username = percent_decode(value),
            Some(("sentinel_password", value)) => sentinel_password = percent_decode(value),
            _ => {}
        }
    }
    Ok(Target::Sentinel(SentinelTarget {
        sentinels,
        service: service.to_owned(),
        db,
        username,
        password,
        sentinel_username,
        sentinel_password,
        tls,
    }))
}

/// Decodes `%XX` escapes; `None` for a bad escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            out.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<(Target, RedisConfig), ConnectError> {
        parse_url(url, RedisConfig::default())
    }

    #[test]
    fn direct_urls_keep_everything_but_our_parameters() {
        let (target, config) =
            parse("rediss://app:s3cret@redis.example:6380/2?assume_noeviction=true&wait_replicas=2").unwrap();
        assert!(
            matches!(&target, Target::Direct { url } if url == "rediss://app:s3cret@redis.example:6380/2")
        );
        assert!(config.assume_noeviction);
        assert_eq!(config.wait_replicas, Some(2));
        let shown = format!("{target:?}");
        assert!(!shown.contains("s3cret") && !shown.contains("app:"), "{shown}");
    }

    #[test]
    fn sentinel_urls_name_hosts_service_and_credentials() {
        let (target, config) = parse(
            "redis+sentinel://:p%40ss@10.0.0.1:26379,10.0.0.2/mymaster/3?sentinel_password=sp&wait_timeout_ms=900",
        )
        .unwrap();
        assert_eq!(config.wait_timeout, Duration::from_millis(900));
        match &target {
            Target::Sentinel(sentinel) => {
                assert_eq!(
                    sentinel.sentinels,
                    [("10.0.0.1".to_owned(), 26379), ("10.0.0.2".to_owned(), 26379)]
                );
                assert_eq!((sentinel.service.as_str(), sentinel.db, sentinel.tls), ("mymaster", 3, false));
                assert_eq!(
                    (sentinel.username.as_deref(), sentinel.password.as_deref()),
                    (None, Some("p@ss"))
                );
                assert_eq!(sentinel.sentinel_password.as_deref(), Some("sp"));
            }
            Target::Direct { .. } | Target::Client(_) => panic!("not a sentinel target"),
        }
        let shown = format!("{target:?}");
        assert!(!shown.contains("p@ss") && !shown.contains("sp\""), "{shown}");
    }

    /// The defaults README.md and SECURITY.md give, written out: a change
    /// here is a change there.
    #[test]
    fn the_defaults_are_the_documented_ones() {
        let config = RedisConfig::default();
        assert_eq!(config.prefix, "sealed-session");
        assert_eq!(config.timeout, Duration::from_millis(250));
        assert_eq!(config.cache_ttl, Duration::from_secs(1));
        assert_eq!(config.policy_check_interval, Duration::from_secs(30));
        assert_eq!(config.wait_timeout, Duration::from_millis(500));
        assert_eq!(config.accept_stale_for, None);
        assert!(!config.assume_noeviction && !config.assume_durable && !config.existing_only);
    }

    #[test]
    fn each_setting_is_set_by_its_builder_and_its_url_parameter() {
        let config = RedisConfig::default()
            .with_prefix("app")
            .with_timeout(Duration::from_millis(7))
            .with_cache_ttl(Duration::from_millis(8))
            .with_stale_answers_for(Some(Duration::from_millis(9)))
            .with_assume_noeviction(true)
            .with_assume_durable(true)
            .with_policy_check_interval(Duration::from_secs(600))
            .with_wait_for_replicas(3, Duration::from_millis(11))
            .with_ca_file("/ca.pem")
            .with_existing_only(true);
        assert!(config.existing_only && !RedisConfig::default().existing_only);
        assert_eq!(config.prefix, "app");
        assert_eq!(config.timeout, Duration::from_millis(7));
        assert_eq!(config.cache_ttl, Duration::from_millis(8));
        assert_eq!(config.accept_stale_for, Some(Duration::from_millis(9)));
        assert!(config.assume_noeviction && config.assume_durable);
        assert_eq!(config.policy_check_interval, MAX_POLICY_CHECK_INTERVAL, "capped at 60 s");
        assert_eq!((config.wait_replicas, config.wait_timeout), (Some(3), Duration::from_millis(11)));
        assert_eq!(config.ca_file.as_deref(), Some(std::path::Path::new("/ca.pem")));

        let url = "rediss://h/0?timeout_ms=12&wait_timeout_ms=13&wait_replicas=0&assume_noeviction=1&assume_durable=true&ca_file=/x%20y.pem";
        let (_, config) = parse(url).unwrap();
        assert_eq!(
            (config.timeout, config.wait_timeout),
            (Duration::from_millis(12), Duration::from_millis(13))
        );
        assert_eq!(config.wait_replicas, Some(0));
        assert!(config.assume_noeviction && config.assume_durable);
        assert_eq!(config.ca_file.as_deref(), Some(std::path::Path::new("/x y.pem")));
        for off in ["false", "0"] {
            let base = RedisConfig::default().with_assume_noeviction(true).with_assume_durable(true);
            let url = format!("redis://h/0?assume_noeviction={off}&assume_durable={off}");
            let (_, config) = parse_url(&url, base).unwrap();
            assert!(!config.assume_noeviction && !config.assume_durable, "{off}");
        }
        let (target, _) = parse("redis+sentinel://s1/svc?sentinel_username=su&sentinel_password=sp").unwrap();
        match target {
            Target::Sentinel(sentinel) => {
                assert_eq!(
                    (sentinel.sentinel_username.as_deref(), sentinel.sentinel_password.as_deref()),
                    (Some("su"), Some("sp"))
                );
            }
            Target::Direct { .. } | Target::Client(_) => panic!("not a sentinel target"),
        }
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        for (url, why) in [
            ("sqlite:/tmp/x", "unknown scheme"),
            ("redis://h/0?evict=no", "unknown query parameter"),
            ("redis://h/0?assume_noeviction=maybe", "true or false"),
            ("redis://h/0?assume_durable=yes", "assume_durable must be true or false"),
            ("redis://h/0?wait_replicas=two", "not a number"),
            ("redis://h/0?ca_file=/x.pem", "ca_file needs TLS"),
            ("redis://h/0?sentinel_password=x", "redis+sentinel"),
            ("redis+sentinel://h:1", "no Sentinel service"),
            ("redis+sentinel://h:x/s", "port"),
            ("redis+sentinel://h/s/x", "database"),
            ("redis://h/0?x", "without a value"),
            ("redis://h/0?ca_file=%zz", "escaped"),
        ] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains(why), "{url}: {err}");
        }
    }

    /// An unescaped `?` or `&` in a password makes part of it a query key:
    /// the error never repeats it.
    #[test]
    fn an_unknown_query_parameter_is_not_quoted() {
        for url in ["redis://u:ab?cdsecret=ef@h/0", "redis+sentinel://h/s?sentinel_password=ab&cdsecret=ef"] {
            let err = parse(url).unwrap_err().to_string();
            assert!(err.contains("unknown query parameter") && !err.contains("cdsecret"), "{err}");
        }
    }

    /// No fragment reaches redis-rs, which reads `#insecure` as turning
    /// certificate checks off; the error does not repeat the URL.
    #[test]
    fn a_fragment_is_refused() {
        for url in ["rediss://h:6380/0#insecure", "redis://u:pa#ss@h/0", "rediss+sentinel://h/s#insecure"] {
            let err = parse(url).unwrap_err().to_string();
            assert!(
                err.contains("`#` fragment") && !err.contains("insecure") && !err.contains("pa#ss"),
                "{err}"
            );
        }
        assert!(parse("redis://u:pa%23ss@h/0").is_ok(), "escaped");
    }

    /// A parameter given twice is refused, not decided by its last value.
    #[test]
    fn a_parameter_given_twice_is_refused() {
        let err =
            parse("redis://h/0?assume_noeviction=false&assume_noeviction=true").unwrap_err().to_string();
        assert!(err.contains("given twice"), "{err}");
        assert!(parse("redis://h/0?assume_noeviction=true&assume_durable=true").is_ok());
    }
}
