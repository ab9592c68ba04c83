//! `sealed-session`: generate keys, rotate keyrings, seal and open tokens,
//! and revoke sessions, from scripts.
//!
//! Data goes in on stdin and comes out on stdout as JSON; errors go to
//! stderr. Exit codes: 0 success, 1 token refused, 2 usage or configuration
//! error, 3 the command succeeded (any change it makes was written) but its
//! output could not be printed.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
// `eprintln!` panics when stderr cannot be written (a full disk): exit 101
// after a change was written. Messages go through `say!`.
#![deny(clippy::print_stderr)]

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use sealed_session::{
    KeyState, Keyring, LoadOptions, LoginError, MasterKey, OpenError, Opened, Revocation, RotationPolicy,
    Sealer, Session, SessionId, StoreError, VerifyError, DEFAULT_LEEWAY, MAX_USER_ID_LEN,
};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// A line to stderr, lost if stderr cannot be written: the exit code, not
/// a message, tells scripts what happened.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _lost_if_unwritable = writeln!(std::io::stderr().lock(), $($arg)*);
    }};
}

/// Keys, keyrings and tokens for sealed-session.
#[derive(Parser)]
#[command(name = "sealed-session", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random key (base64url, 32 bytes).
    Keygen,
    /// Create and rotate keyring files.
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Seal session data (JSON on stdin) into a token.
    Seal {
        /// Keyring file.
        #[arg(long)]
        keyring: PathBuf,
        /// Purpose bound into the token (the cookie name).
        #[arg(long)]
        purpose: String,
        /// Absolute timeout in seconds.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: u64,
        /// Idle timeout in seconds.
        #[arg(long, default_value_t = 30 * 60)]
        idle: u64,
        /// User the session belongs to.
        #[arg(long, requires = "epoch")]
        user: Option<String>,
        /// The user's revocation epoch.
        #[arg(long, requires = "user")]
        epoch: Option<u64>,
    },
    /// Open a token and print its envelope as JSON; exit 1 if it is refused.
    Open {
        /// Keyring file.
        #[arg(long)]
        keyring: PathBuf,
        /// Purpose the token must have been sealed for.
        #[arg(long)]
        purpose: String,
        /// Open as of this time (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<String>,
        /// Also check revocation in this store (sqlite:PATH, postgres://…, redis://…, rediss://… or redis+sentinel://…);
        /// or from SEALED_SESSION_STORE, which keeps a password out of the command line.
        #[arg(long, env = "SEALED_SESSION_STORE", hide_env_values = true)]
        store: Option<String>,
        /// Absolute timeout in seconds, as the server applies it.
        #[arg(long, default_value_t = 12 * 3600)]
        ttl: u64,
        /// Idle timeout in seconds, as the server applies it.
        #[arg(long, default_value_t = 30 * 60)]
        idle: u64,
        /// Absolute timeout of remember-me sessions in seconds, as the server applies it.
        #[arg(long, default_value_t = 30 * 86_400)]
        remember_ttl: u64,
        /// Idle timeout of remember-me sessions in seconds, as the server applies it.
        #[arg(long, default_value_t = 7 * 86_400)]
        remember_idle: u64,
        /// Refuse remember-me tokens, as a server without remember-me does.
        #[arg(long, conflicts_with_all = ["remember_ttl", "remember_idle"])]
        no_remember_me: bool,
        /// Open device-bound (DBSC) tokens too, as a server with device-bound
        /// sessions does: their lifetime after the last proof, in seconds
        /// (without it, such a token is refused as invalid, as that server
        /// would).
        #[arg(long)]
        device_bound: Option<u64>,
        /// The token; `-` or nothing reads it from stdin (a token on the
        /// command line is visible to other local users and kept in shell history).
        token: Option<String>,
    },
    /// Revoke every session of a user, one session, or everyone's, in a store.
    Revoke {
        /// The store (sqlite:PATH, postgres://…, redis://…, rediss://… or redis+sentinel://…); or from
        /// SEALED_SESSION_STORE, which keeps a password out of the command line (and `ps`).
        #[arg(long, env = "SEALED_SESSION_STORE", hide_env_values = true)]
        store: String,
        /// Log this user out everywhere.
        #[arg(
            long,
            conflicts_with_all = ["session", "session_token", "all"],
            required_unless_present_any = ["session", "session_token", "all"]
        )]
        user: Option<String>,
        /// Log everyone out: every session issued until now, on every
        /// server (after restoring an older copy of a store, say). It
        /// cannot be undone: needs --yes.
        #[arg(long, conflicts_with_all = ["session", "session_token"])]
        all: bool,
        /// Confirms --all (and only --all).
        #[arg(long)]
        yes: bool,
        /// Log out this session (32 hex digits, as `open` prints it); needs --until.
        #[arg(long, conflicts_with = "session_token", requires = "until")]
        session: Option<String>,
        /// With --session: the session's absolute expiry, a Unix time
        /// (`expires_at_unix` in the output of `open`); the entry is kept
        /// until then plus the clock leeway, as a server's logout keeps it.
        /// Refused if that has passed by the store's time: the earlier of
        /// its clock and this host's (Redis, PostgreSQL), or this host's
        /// (SQLite).
        #[arg(long, requires = "session")]
        until: Option<u64>,
        /// With --session or --session-token: the servers' clock leeway in
        /// seconds (their sealer's `leeway`, 60 by default, at most a
        /// day), which the entry outlasts the expiry by: a server whose
        /// clock runs behind still opens the session until then.
        #[arg(long, conflicts_with_all = ["user", "all"], value_parser = clap::value_parser!(u64).range(..=86_400))]
        leeway: Option<u64>,
        /// Log out the session of this token, with its ID and expiry read
        /// from the token, which must authenticate with --keyring and
        /// --purpose (the cookie name): any token a server would accept,
        /// standard or remember-me, whatever the timeouts; `-` or no value
        /// reads it from stdin.
        #[arg(long, num_args = 0..=1, default_missing_value = "-", requires_all = ["keyring", "purpose"])]
        session_token: Option<String>,
        /// Keyring file, for --session-token.
        #[arg(long)]
        keyring: Option<PathBuf>,
        /// Purpose the token was sealed for (the cookie name), for --session-token.
        #[arg(long)]
        purpose: Option<String>,
    },
    /// Validate a keyring file and say what the next rotation step is.
    Check {
        /// Keyring file.
        #[arg(long)]
        keyring: PathBuf,
    },
    /// Keep a rolling key schedule: the same as `keyring rotate`.
    Rotate(RotateArgs),
}

#[derive(Subcommand)]
enum KeyringCommand {
    /// Create a keyring file with one primary key (refuses to overwrite).
    Init {
        /// Keyring file to create.
        file: PathBuf,
    },
    /// Add a new `active` key (rotation phase 1); prints its ID. With
    /// --activate-at (a time in the future) it seals from that time on with
    /// no further step.
    Add {
        /// Keyring file.
        file: PathBuf,
        /// When the new key starts sealing: RFC 3339, or `+N` with a unit
        /// (s, m, h, d) from now. Leave time for the file to reach every server.
        #[arg(long)]
        activate_at: Option<String>,
    },
    /// Make a key primary (rotation phase 2); the old primary becomes active.
    Promote {
        /// Keyring file.
        file: PathBuf,
        /// Key ID.
        id: u32,
    },
    /// Retire a key (rotation phase 3): tokens under it are refused, now
    /// or, with --at, from that time on. With --replace, a key waiting to
    /// take over (one that leaked before its day) is retired now and a new
    /// key is scheduled for its time.
    Retire {
        /// Keyring file.
        file: PathBuf,
        /// Key ID.
        id: u32,
        /// When, in the future: RFC 3339, or `+N` with a unit (s, m, h, d)
        /// from now. Leave it out to retire the key now.
        #[arg(long, conflicts_with = "replace")]
        at: Option<String>,
        /// Schedule a new key to take over when key ID would have; prints
        /// the keys, the new one among them.
        #[arg(long)]
        replace: bool,
    },
    /// Print the schedule as JSON: which key seals when, when each key
    /// retires, and how many days each is kept after it stops sealing.
    Plan {
        /// Keyring file.
        file: PathBuf,
        /// Describe the keyring as of this time (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<String>,
    },
    /// Keep a rolling schedule, from a daily cron job (also
    /// `sealed-session rotate`): add a key to seal --every days after the
    /// current one, retire replaced keys --keep days after their successor
    /// took over, drop long-retired keys, and write the file as of now.
    /// Changes nothing when run twice.
    Rotate(RotateArgs),
    /// Print the keys as JSON: id, state, created. Never secrets.
    List {
        /// Keyring file.
        file: PathBuf,
    },
}

/// The arguments of `keyring rotate` (and `rotate`).
#[derive(clap::Args)]
struct RotateArgs {
    /// Keyring file.
    file: PathBuf,
    /// Days each key seals.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    every: u32,
    /// Days a key still opens tokens after its successor took over: at
    /// least the longest session lifetime (remember-me included).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    keep: u32,
    /// Days a new key is in the file before it activates: the time the
    /// file takes to reach every server.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    lead: u32,
    /// Show what a run at this time (RFC 3339) would do, and write
    /// nothing: a file written as of another time than the clock's would
    /// retire keys early, or make a new key seal before it reached every
    /// server.
    #[arg(long)]
    now: Option<String>,
}

/// A failure, with the exit code it maps to.
enum Failure {
    /// The token was refused (exit 1).
    Refused(String),
    /// Usage or configuration error (exit 2).
    Config(String),
}

impl<E: std::error::Error> From<E> for Failure {
    fn from(err: E) -> Self {
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(cause) = source {
            // Most of our errors already end with their cause's text.
            let text = cause.to_string();
            if !message.ends_with(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        Failure::Config(message)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(runtime) => runtime.block_on(run(cli.command)),
        Err(err) => Err(Failure::from(err)),
    };
    match result {
        Ok(output) => {
            // The output may be a key, a token or session data: wiped on drop.
            let output = Zeroizing::new(output);
            let mut stdout = std::io::stdout().lock();
            if let Err(err) = writeln!(stdout, "{}", output.as_str()).and_then(|()| stdout.flush()) {
                // Not 2: a script that retried `keyring add` on 2 would add a second key.
                say!(
                    "error: the command succeeded, and any change it makes was written, but its output \
                     could not be printed: {err}; before running a command that changes a keyring or a \
                     store again, check whether its change is there"
                );
                return ExitCode::from(3);
            }
            ExitCode::SUCCESS
        }
        Err(Failure::Refused(reason)) => {
            say!("refused: {reason}");
            ExitCode::from(1)
        }
        Err(Failure::Config(message)) => {
            say!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(command: Command) -> Result<String, Failure> {
    match command {
        Command::Keygen => Ok(MasterKey::generate()?.to_base64().to_string()),
        Command::Keyring(command) => keyring_command(command),
        Command::Seal { keyring, purpose, ttl, idle, user, epoch } => {
            let sealer = sealer(&keyring, purpose, ttl, idle)?;
            let mut input = String::new();
            std::io::stdin().read_to_string(&mut input)?;
            let data: Value = serde_json::from_str(&input)
                .map_err(|err| Failure::Config(format!("session data on stdin is not JSON: {err}")))?;
            let mut session = Session::try_new(data.to_string())?;
            if let (Some(user), Some(epoch)) = (user, epoch) {
                // As a login refuses it: `revoke --user` could not end it.
                if user.len() > MAX_USER_ID_LEN {
                    return Err(LoginError::UserIdTooLong { len: user.len() }.into());
                }
                session = session.with_user(user, epoch);
            }
            Ok(sealer.seal(&session)?)
        }
        Command::Open {
            keyring,
            purpose,
            now,
            store,
            ttl,
            idle,
            remember_ttl,
            remember_idle,
            no_remember_me,
            device_bound,
            token,
        } => {
            let mut sealer = Sealer::builder(load(&keyring)?)
                .purpose(purpose)
                .absolute_timeout(Duration::from_secs(ttl))
                .idle_timeout(Duration::from_secs(idle));
            if !no_remember_me {
                sealer =
                    sealer.remember_me(Duration::from_secs(remember_ttl), Duration::from_secs(remember_idle));
            }
            if let Some(lifetime) = device_bound {
                sealer = sealer.device_bound_lifetime(Duration::from_secs(lifetime));
            }
            let sealer = sealer.build()?;
            let now = now_arg(now.as_deref())?;
            if now.unix_timestamp() < 0 {
                return Err(Failure::Config("--now must not be before 1970".into()));
            }
            let token = read_token(token)?;
            let opened = sealer.open_raw_at(&token, now).map_err(refusal)?;
            if let Some(url) = store {
                let store = open_existing_store(&url).await?;
                let session = opened.session();
                let state = sealed_session::RevocationStore::state(&store, session.user_id(), session.id())
                    .await
                    .map_err(|err| Failure::Config(format!("cannot check revocation: {err}")))?;
                sealed_session::check_revocation(session, &state).map_err(verify_refusal)?;
            }
            Ok(envelope_json(&opened)?.to_string())
        }
        Command::Revoke {
            store,
            user,
            all,
            yes,
            session,
            until,
            leeway,
            session_token,
            keyring,
            purpose,
        } => {
            // Everything that can be checked is checked before the store is touched.
            let leeway = leeway.unwrap_or(DEFAULT_LEEWAY.as_secs());
            let target = match (user, session, session_token) {
                _ if all && !yes => {
                    return Err(Failure::Config(format!(
                        "--all logs out every user on every server that uses {}, and cannot be undone (the \
                         cutoff only moves forward): check the store, then run it again with --yes",
                        shown_store(&store)
                    )))
                }
                _ if all => Revoke::All,
                _ if yes => return Err(Failure::Config("--yes confirms --all only".into())),
                // No session of it can exist (a login refuses one); the
                // store would make a key or row of any size from it.
                (Some(user), _, _) if user.len() > MAX_USER_ID_LEN => {
                    return Err(StoreError::UserIdTooLong { len: user.len() }.into())
                }
                (Some(user), _, _) => Revoke::User(user),
                (None, Some(hex), _) => {
                    let id = SessionId::from_hex(&hex)
                        .ok_or_else(|| Failure::Config("--session must be 32 hex digits".into()))?;
                    let until = until.ok_or_else(|| {
                        Failure::Config(
                            "--session needs --until: the session's expires_at_unix, as open prints it"
                                .into(),
                        )
                    })?;
                    Revoke::Session(id, until)
                }
                (None, None, Some(token)) => {
                    let (Some(keyring), Some(purpose)) = (keyring, purpose) else {
                        return Err(Failure::Config("--session-token needs --keyring and --purpose".into()));
                    };
                    // Timeouts do not matter here: the session is ended
                    // until its absolute expiry, which the token carries.
                    let sealer = Sealer::builder(load(&keyring)?).purpose(purpose).build()?;
                    let token = read_token(Some(token))?;
                    let inspected = sealer.inspect(&token).map_err(refusal)?;
                    // As a server's logout does: past the expiry by the clock leeway.
                    let leeway = i64::try_from(leeway).unwrap_or(0);
                    let until = inspected.expires_at.unix_timestamp().saturating_add(leeway);
                    let until = u64::try_from(until).unwrap_or(0);
                    // Whether it has expired is the store's to say (by the
                    // earlier of its clock and this host's, where it has
                    // one): this host's may run ahead.
                    Revoke::Token(inspected.session_id, until)
                }
                (None, None, None) => {
                    return Err(Failure::Config("give --user, --session, --session-token or --all".into()))
                }
            };
            let store = open_existing_store(&store).await?;
            let answer = match target {
                Revoke::User(user) => {
                    let epoch = sealed_session::RevocationStore::revoke_user(&store, &user).await?;
                    json!({ "user": user, "epoch": epoch })
                }
                Revoke::Session(id, expires_at) => {
                    // As a server's logout does: past the expiry by the clock
                    // leeway (a server whose clock runs behind still opens
                    // the session until then). Whether that has passed is
                    // the store's to say, by its clock where it has one:
                    // this host's may run ahead.
                    let until = expires_at.saturating_add(leeway);
                    match sealed_session::RevocationStore::revoke_session(&store, id, until).await {
                        Ok(()) => json!({ "session": id.to_hex(), "until": until }),
                        Err(StoreError::ExpiryNotInFuture { now, .. }) => {
                            return Err(Failure::Config(format!(
                                "--until {expires_at} is not in the future (the store's time is {now}, with the \
                                 clock leeway of {leeway} s): an entry that ends now revokes nothing, and would \
                                 never shorten an existing one; pass the session's expires_at_unix"
                            )));
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
                Revoke::Token(id, until) => {
                    match sealed_session::RevocationStore::revoke_session(&store, id, until).await {
                        Ok(()) => json!({ "session": id.to_hex(), "until": until }),
                        // No server opens it any more: nothing to revoke.
                        Err(StoreError::ExpiryNotInFuture { .. }) => {
                            json!({ "session": id.to_hex(), "until": until, "already_expired": true })
                        }
                        Err(err) => return Err(err.into()),
                    }
                }
                Revoke::All => {
                    let now = u64::try_from(OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
                    // The store dates the cutoff by its own clock where it has
                    // one: a host whose clock runs ahead cannot push it later.
                    let cutoff = sealed_session::RevocationStore::revoke_all(&store, now).await?;
                    if now > cutoff.saturating_add(1) {
                        say!(
                            "warning: this host's clock is {}s ahead of the store's; the cutoff is the store's \
                             time ({cutoff}): check the clocks (NTP)",
                            now - cutoff
                        );
                    }
                    json!({ "all": true, "revoked_through": cutoff })
                }
            };
            Ok(answer.to_string())
        }
        Command::Check { keyring } => check(&keyring),
        Command::Rotate(args) => rotate(args),
    }
}

/// What `revoke` revokes.
enum Revoke {
    User(String),
    /// `--session` with `--until`.
    Session(SessionId, u64),
    /// `--session-token`: its session until its expiry and the leeway.
    Token(SessionId, u64),
    All,
}

/// The token given, or read from stdin for `-` or none.
/// A token from stdin is read into memory sized once and wiped on drop (a
/// bearer token is a credential); one longer than any token is refused.
fn read_token(token: Option<String>) -> Result<Zeroizing<String>, Failure> {
    const MAX_INPUT: usize = 64 * 1024;
    match token {
        Some(token) if token != "-" => Ok(Zeroizing::new(token)),
        _ => {
            let mut input = Zeroizing::new(String::with_capacity(MAX_INPUT + 1));
            std::io::stdin().take(MAX_INPUT as u64 + 1).read_to_string(&mut input)?;
            if input.len() > MAX_INPUT {
                return Err(Failure::Config(format!("the token on stdin is longer than {MAX_INPUT} bytes")));
            }
            Ok(Zeroizing::new(input.trim().to_owned()))
        }
    }
}

/// Reads a keyring file with the library's checks, except that it may
/// belong to another user: root changing the keyring of a server that runs
/// as that user is what this tool is for, and that user could change the
/// file itself anyway. The directories on the way may not: their owner
/// could swap the file, or a directory, for a link to another service's
/// keyring between this run's read and its write, and have root copy
/// those keys into a file they can read, or theirs into that keyring.
fn load(file: &Path) -> Result<Keyring, sealed_session::KeyringError> {
    Keyring::load_with(file, LoadOptions::allow_other_file_owner())
}

fn sealer(keyring: &Path, purpose: String, ttl: u64, idle: u64) -> Result<Sealer, Failure> {
    let keyring = load(keyring)?;
    Ok(Sealer::builder(keyring)
        .purpose(purpose)
        .absolute_timeout(Duration::from_secs(ttl))
        .idle_timeout(Duration::from_secs(idle))
        .build()?)
}

/// The reason a token was refused, in the words the docs use.
fn refusal(err: OpenError) -> Failure {
    match err {
        OpenError::TooLarge { .. } | OpenError::Malformed | OpenError::UnsupportedVersion(_) => {
            Failure::Refused(format!("malformed ({err})"))
        }
        OpenError::Invalid => Failure::Refused(format!("invalid ({err})")),
        OpenError::UnknownKey(_) => Failure::Refused(format!("unknown key ({err})")),
        OpenError::RetiredKey(_) => Failure::Refused(format!("retired key ({err})")),
        OpenError::Expired(_) => Failure::Refused(format!("expired ({err})")),
        OpenError::NotYetValid => Failure::Refused(format!("not yet valid ({err})")),
        other => Failure::Refused(other.to_string()),
    }
}

fn verify_refusal(err: VerifyError) -> Failure {
    match err {
        VerifyError::Revoked(Revocation::User) => {
            Failure::Refused("revoked (the user logged out everywhere)".into())
        }
        VerifyError::Revoked(reason) => Failure::Refused(format!("revoked ({reason})")),
        VerifyError::StoreFault { .. } => Failure::Refused(format!("store fault ({err})")),
        other => Failure::Config(other.to_string()),
    }
}

fn rfc3339(time: Option<OffsetDateTime>) -> Value {
    time.and_then(|t| t.format(&Rfc3339).ok()).map_or(Value::Null, Value::String)
}

fn envelope_json(opened: &Opened<Vec<u8>>) -> Result<Value, Failure> {
    let session = opened.session();
    // Tokens sealed by this tool hold JSON text; others hold the
    // application's own type, shown as its postcard bytes.
    let data = match postcard::take_from_bytes::<String>(session.data()) {
        Ok((text, [])) => serde_json::from_str::<Value>(&text).ok(),
        _ => None,
    };
    let mut out = serde_json::Map::new();
    let fields = json!({
        "session_id": session.id().to_hex(),
        "user": session.user_id(),
        "epoch": session.epoch(),
        "key_id": opened.key_id(),
        "issued_at": rfc3339(session.issued_at()),
        "expires_at": rfc3339(session.expires_at()),
        "expires_at_unix": session.expires_at().map(|t| t.unix_timestamp()),
        "last_seen": rfc3339(session.last_seen()),
        "idle_expires_at": rfc3339(Some(opened.idle_expires_at())),
        "reissue": opened.reissue().map(|r| format!("{r:?}")),
        "profile": if session.is_remembered() { "remember-me" } else { "standard" },
        "device_bound": session.is_device_bound(),
        "versioned": opened.is_versioned_data(),
    });
    if let Value::Object(fields) = fields {
        out.extend(fields);
    }
    match data {
        Some(value) => out.insert("data".into(), value),
        None => out.insert(
            "data_postcard_base64url".into(),
            Value::String(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(session.data())),
        ),
    };
    Ok(Value::Object(out))
}

/// How long a command waits for another's lock on the keyring file: 60
/// seconds, or `SEALED_SESSION_LOCK_WAIT` seconds. A run that hangs (or a
/// lock someone else holds) must not stall every later cron run in silence.
fn lock_wait() -> Result<std::time::Duration, Failure> {
    match std::env::var("SEALED_SESSION_LOCK_WAIT") {
        Err(std::env::VarError::NotPresent) => Ok(std::time::Duration::from_secs(60)),
        Ok(text) if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(std::time::Duration::from_secs(text.parse().unwrap_or(u64::MAX)))
        }
        _ => Err(Failure::Config("SEALED_SESSION_LOCK_WAIT must be a whole number of seconds".to_owned())),
    }
}

/// Takes the lock on `lock`, waiting at most `wait` for another holder:
/// whether it got it.
fn wait_for_lock(lock: &std::fs::File, wait: std::time::Duration) -> std::io::Result<bool> {
    let start = std::time::Instant::now();
    loop {
        match lock.try_lock() {
            Ok(()) => return Ok(true),
            Err(std::fs::TryLockError::Error(err)) => return Err(err),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < wait => {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::WouldBlock) => return Ok(false),
        }
    }
}

/// Why the lock on `path`, open, could not be taken: a file system without
/// locks (NFS without its lock service) is said to be one, not taken for a
/// lock file to remove.
fn lock_refused(path: &Path, err: std::io::Error) -> Failure {
    let without_locks =
        err.raw_os_error() == Some(libc::ENOLCK) || err.kind() == std::io::ErrorKind::Unsupported;
    Failure::Config(if without_locks {
        format!(
            "cannot lock {}: {err}: its file system takes no locks (NFS without its lock service, say); keep the \
             keyring on a file system that does, or give the NFS mount its locking back",
            path.display()
        )
    } else {
        format!(
            "cannot lock {}: {err} (it holds no data: if it is not a file this user can write, remove it)",
            path.display()
        )
    })
}

/// Holds an exclusive lock on `.<file>.lock` beside `file` while a command
/// (`add`, `promote`, `retire`, `rotate`) reads, changes and writes the
/// keyring, so that two runs at once (cron jobs on hosts that share the
/// file) never write over each other's keys.
fn lock_keyring(file: &Path) -> Result<std::fs::File, Failure> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let wait = lock_wait()?;
    // A keyring this run would refuse (another user's directory on the
    // way, say) is refused before its lock file is made there: read again
    // under the lock, as the command does anyway.
    load(file)?;
    let name =
        file.file_name().ok_or_else(|| Failure::Config(format!("{} is not a file name", file.display())))?;
    let path = file.with_file_name(format!(".{}.lock", name.to_string_lossy()));
    let cannot = |err: std::io::Error| lock_refused(&path, err);
    // Never through a link, nor waiting on a FIFO: whoever can write the
    // directory could plant either, and this run may be root's.
    let open = |create: bool| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).mode(0o600);
        if create {
            options.create_new(true);
        }
        options.open(&path)
    };
    let (lock, created) = match open(true) {
        Ok(lock) => (lock, true),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => (open(false).map_err(cannot)?, false),
        // No file there: the directory is what refused.
        Err(err) => {
            return Err(Failure::Config(format!(
                "cannot make the lock file {}: {err} (a change writes the keyring's directory, {}, so run it as a \
                 user who may write there, on a writable file system)",
                path.display(),
                dir_of(file).display()
            )))
        }
    };
    if !lock.metadata().map_err(cannot)?.is_file() {
        return Err(cannot(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file")));
    }
    if !wait_for_lock(&lock, wait).map_err(cannot)? {
        return Err(Failure::Config(format!(
            "cannot lock {}: another keyring command held it all the {}s this one waited (one still running, or a \
             hung one: see who holds the file, with `fuser` say); nothing was changed",
            path.display(),
            wait.as_secs()
        )));
    }
    // A lock file this run made is owned as the keyring is, so that the
    // keyring's owner can lock it next time. If that is not allowed, the
    // lock stays this user's: harmless now, and a later run as another
    // user that cannot open it says so.
    if created {
        // Whatever the umask took from `0600`: a lock file made `0400`
        // (umask `0277`) would refuse every later run as another user.
        let _ = lock.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
        if let (Ok(keyring), Ok(ours)) = (std::fs::metadata(file), lock.metadata()) {
            use std::os::unix::fs::MetadataExt as _;
            if (keyring.uid(), keyring.gid()) != (ours.uid(), ours.gid()) {
                let _ = std::os::unix::fs::fchown(&lock, Some(keyring.uid()), Some(keyring.gid()));
            }
        }
    }
    Ok(lock)
}

/// The directory `file` is in (`.` for a bare name).
fn dir_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Removes the temporary copies of the keyring `name` in `dir` that a run
/// killed while it wrote one left (`write_keyring`'s `.NAME.PID.ID.tmp`):
/// they hold keys, retired ones too, that the file itself may since have
/// dropped. Called by `write_keyring` for a change, under the lock, which
/// every change of the file holds, so none is a copy still being written
/// (`init`, which does not lock, fails on an existing file). A name is
/// removed, never followed.
fn remove_leftover_copies(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let prefix = format!(".{name}.");
    let is_copy = |n: &str| {
        let rest = n.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(".tmp"));
        rest.and_then(|rest| rest.split_once('.')).is_some_and(|(pid, id)| {
            pid.parse::<u32>().is_ok() && id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
        })
    };
    for entry in entries.flatten() {
        let leftover = entry.file_name().to_str().is_some_and(is_copy);
        if leftover && entry.file_type().is_ok_and(|t| !t.is_dir()) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => {
                    say!("removed {}, a copy of the keyring a killed run left", entry.path().display())
                }
                Err(err) => {
                    say!("warning: cannot remove {}, a copy of the keyring: {err}", entry.path().display())
                }
            }
        }
    }
}

fn keyring_command(command: KeyringCommand) -> Result<String, Failure> {
    let _lock = match &command {
        KeyringCommand::Add { file, .. }
        | KeyringCommand::Promote { file, .. }
        | KeyringCommand::Retire { file, .. } => Some(lock_keyring(file)?),
        _ => None,
    };
    match command {
        KeyringCommand::Init { file } => {
            let keyring = Keyring::generate()?;
            write_keyring(&file, &keyring, Replace::Never)?;
            // Where every later command (and every server) would refuse the
            // file (below another user's directory, say), none is left.
            if let Err(err) = load(&file) {
                let _ = std::fs::remove_file(&file);
                return Err(err.into());
            }
            Ok(json!({ "file": file.display().to_string(), "primary": keyring.primary_id() }).to_string())
        }
        KeyringCommand::Add { file, activate_at } => {
            let keyring = load(&file)?;
            let (keyring, id) = match activate_at {
                Some(text) => {
                    let at = time_arg("--activate-at", &text)?;
                    if at <= OffsetDateTime::now_utc() {
                        return Err(Failure::Config(format!(
                            "--activate-at {text} is not in the future: the new key would seal at once on \
                             each server the file reaches, while servers without the file could not open \
                             its cookies; give a time after the file reaches every server (like +1h), or \
                             add the key without --activate-at and promote it once it is everywhere"
                        )));
                    }
                    keyring.with_new_key_activating_at(at)?
                }
                None => keyring.with_new_key()?,
            };
            write_keyring(&file, &keyring, Replace::Existing)?;
            Ok(id.to_string())
        }
        KeyringCommand::Promote { file, id } => {
            let before = load(&file)?;
            let keyring = before.with_primary(id)?;
            write_keyring(&file, &keyring, Replace::Existing)?;
            let now = OffsetDateTime::now_utc();
            let waiting: Vec<u32> = before
                .keys()
                .filter(|k| k.id != id && k.activate_at.is_some_and(|at| at > now))
                .map(|k| k.id)
                .collect();
            if !waiting.is_empty() {
                say!(
                    "warning: a promotion clears every key's activate_at: key(s) {waiting:?}, which were waiting, open \
                     tokens from now on, before their time; schedule the next rotation again (keyring rotate)"
                );
            }
            let due = before.keys().find(|k| k.id == id).and_then(|k| k.activate_at);
            if let Some(due) = due.filter(|at| *at > now) {
                let due = due.format(&Rfc3339).unwrap_or_default();
                say!(
                    "warning: key {id} was due to seal from {due}; it seals now. Servers that still have the older \
                     file refuse its cookies as not yet valid (they keep them, and answer 503 to logins and \
                     logouts) until this file reaches them: deploy it to every server now"
                );
            }
            Ok(list(&keyring).to_string())
        }
        KeyringCommand::Retire { file, id, at, replace } => {
            let keyring = load(&file)?;
            let keyring = match (at, replace) {
                (_, true) => keyring.with_waiting_key_replaced(id)?.0,
                (Some(text), false) => {
                    let at = time_arg("--at", &text)?;
                    if at <= OffsetDateTime::now_utc() {
                        // Without this, a past time retires the key at once,
                        // silently: the typo of a date, not a schedule.
                        return Err(Failure::Config(format!(
                            "--at {text} is not in the future: give a later time, or leave out --at to \
                             retire key {id} now"
                        )));
                    }
                    keyring.with_retire_at(id, at)?
                }
                // Refuses the key that seals now, scheduled or primary.
                (None, false) => {
                    let retired = keyring.with_retired(id)?;
                    let changed = std::fs::metadata(&file).and_then(|meta| meta.modified()).ok();
                    warn_of_recent_handover(&keyring, id, changed.map(OffsetDateTime::from));
                    retired
                }
            };
            write_keyring(&file, &keyring, Replace::Existing)?;
            Ok(list(&keyring).to_string())
        }
        KeyringCommand::List { file } => Ok(list(&load(&file)?).to_string()),
        KeyringCommand::Plan { file, now } => {
            let now = now_arg(now.as_deref())?;
            Ok(plan(&load(&file)?, now).to_string())
        }
        KeyringCommand::Rotate(args) => rotate(args),
    }
}

/// Warns when key `id`, retired now, may have sealed sessions less than a
/// day ago: the key that seals now took over since, by its schedule, or
/// (a primary the file gives no start) was created since or may have been
/// promoted when the file was `changed` last. Those sessions are refused
/// from now on, which is right after a leak and an outage for their users
/// otherwise (phase 3 waits for the longest session lifetime after phase
/// 2, and the file does not record when phase 2 ran).
fn warn_of_recent_handover(keyring: &Keyring, id: u32, changed: Option<OffsetDateTime>) {
    let now = OffsetDateTime::now_utc();
    let successor = keyring.sealing_id_at(now);
    let Some(spec) = keyring.keys().find(|k| k.id == successor) else { return };
    let since = match spec.activate_at {
        Some(at) => Some(at),
        None => spec.created.max(changed),
    };
    let Some(since) = since.filter(|at| now - *at < time::Duration::days(1)) else { return };
    say!(
        "warning: key {id} may have sealed sessions until {} s ago (key {successor}, which seals now, took over, was \
         created or promoted then, or the keyring file changed then): they are refused from now on. Unless key {id} \
         leaked, retire it once your longest session lifetime has passed since then instead (keyring retire FILE \
         {id} --at +12h, say)",
        (now - since).whole_seconds().max(0)
    );
}

/// `keyring rotate`: one step of a rolling schedule, written if it changed
/// anything; prints the plan, the key added, whether the keyring changed
/// and whether the file was written (never with `--now`, which only shows
/// what a run at that time would do).
fn rotate(RotateArgs { file, every, keep, lead, now }: RotateArgs) -> Result<String, Failure> {
    let dry_run = now.is_some();
    // A dry run writes nothing, so it neither waits for the lock nor makes
    // a lock file (the file is replaced by a rename: never read half-written).
    let _lock = if dry_run { None } else { Some(lock_keyring(&file)?) };
    // Read once the lock is held: a wait for it must not date the new key
    // as of when the run began (its lead would be shorter by the wait).
    let now = now_arg(now.as_deref())?;
    let days = |n: u32| Duration::from_secs(u64::from(n) * 86_400);
    let policy = RotationPolicy::new(days(every), days(keep)).lead(days(lead));
    let before = load(&file)?;
    let (keyring, added) = before.rotated_at(now, &policy)?;
    let changed = keyring.to_toml_string() != before.to_toml_string();
    let written = changed && !dry_run;
    if written {
        write_keyring(&file, &keyring, Replace::Existing)?;
    } else if changed {
        say!("--now: a dry run, nothing written; run without --now to write the file");
    }
    let mut out = plan(&keyring, now);
    if let Value::Object(fields) = &mut out {
        fields.insert("added".into(), json!(added));
        fields.insert("changed".into(), json!(changed));
        fields.insert("written".into(), json!(written));
    }
    Ok(out.to_string())
}

fn list(keyring: &Keyring) -> Value {
    Value::Array(
        keyring
            .keys()
            .map(|k| {
                json!({
                    "id": k.id,
                    "state": k.state.as_str(),
                    "created": rfc3339(k.created),
                    "activate_at": rfc3339(k.activate_at),
                    "retire_at": rfc3339(k.retire_at),
                })
            })
            .collect(),
    )
}

/// The schedule as of `now`: the sealing periods, and per key what it does
/// now, when it stops sealing and retires, and the days between the two.
fn plan(keyring: &Keyring, now: OffsetDateTime) -> Value {
    let periods = keyring.sealing_periods();
    let until = |i: usize| periods.get(i + 1).and_then(|next| next.from);
    let days = |from: OffsetDateTime, to: OffsetDateTime| {
        ((to - from).whole_seconds() as f64 / 86_400.0 * 100.0).round() / 100.0
    };
    let timeline: Vec<Value> = periods
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let length = p.from.zip(until(i)).map(|(from, to)| days(from, to));
            json!({ "from": rfc3339(p.from), "until": rfc3339(until(i)), "key": p.key_id, "days": length })
        })
        .collect();
    let keys: Vec<Value> = keyring
        .keys()
        .map(|k| {
            // When the key last stops sealing: the start of the period after its last one.
            let stops_sealing = periods.iter().rposition(|p| p.key_id == k.id).and_then(until);
            let kept_days = stops_sealing.zip(k.retire_at).map(|(from, to)| days(from, to));
            json!({
                "id": k.id,
                "state": k.state.as_str(),
                "now": keyring.state_at(k.id, now).map(|s| s.as_str()),
                "activate_at": rfc3339(k.activate_at),
                "stops_sealing": rfc3339(stops_sealing),
                "retire_at": rfc3339(k.retire_at),
                "kept_days": kept_days,
            })
        })
        .collect();
    json!({
        "now": rfc3339(Some(now)),
        "sealing_now": keyring.sealing_id_at(now),
        "timeline": timeline,
        "keys": keys,
    })
}

/// A time argument: RFC 3339, or `+N` followed by s, m, h or d from now.
fn time_arg(flag: &str, text: &str) -> Result<OffsetDateTime, Failure> {
    let bad =
        || Failure::Config(format!("{flag} must be an RFC 3339 time or +N with s, m, h or d (like +2d)"));
    // To the second, as the keyring keeps it: a fraction would pass the
    // callers' "in the future" checks and be dropped after them.
    let to_second = |time: OffsetDateTime| time.replace_nanosecond(0).map_err(|_| bad());
    let Some(relative) = text.strip_prefix('+') else {
        return OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad()).and_then(to_second);
    };
    let split = relative.len().checked_sub(1).ok_or_else(bad)?;
    let (number, unit) = (relative.get(..split).ok_or_else(bad)?, relative.get(split..).ok_or_else(bad)?);
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    // Digits only: `parse` would also take a sign, and `+-1d` is no time
    // from now.
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds = number.parse::<i64>().ok().and_then(|n| n.checked_mul(scale)).ok_or_else(bad)?;
    OffsetDateTime::now_utc()
        .checked_add(time::Duration::seconds(seconds))
        .ok_or_else(bad)
        .and_then(to_second)
}

/// The store the servers use, which `open` and `revoke` never create or
/// set up: a revocation written into a new, empty store (a mistyped path,
/// another database number) would reach no server, and a check against
/// one would find nothing revoked. One no server has set up is refused.
async fn open_existing_store(url: &str) -> Result<sealed_session::SharedStore, Failure> {
    if url.starts_with("sqlite:") && url.ends_with("?create=true") {
        return Err(Failure::Config(
            "--store asks to create the SQLite file (?create=true): open and revoke work on the store \
             the servers use; give its URL without ?create=true"
                .into(),
        ));
    }
    Ok(sealed_session_stores::open_existing(url).await?)
}

/// The store of `url` without what may be secret: its scheme, hosts and
/// path (or a SQLite file), never a user name, password or query. Where a
/// password left unescaped makes the URL ambiguous (a `/`, `?`, `#` or `@`
/// in it), only the scheme.
fn shown_store(url: &str) -> String {
    let plain = |text: &str, extra: &[u8]| {
        text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b) || extra.contains(&b))
    };
    let Some((scheme, rest)) =
        url.split_once("://").filter(|(scheme, _)| !scheme.is_empty() && plain(scheme, b"+"))
    else {
        let file = url.strip_prefix("sqlite:").map(|file| file.split(['?', '#']).next().unwrap_or_default());
        return match file {
            Some(file) if !url.contains('@') => format!("sqlite:{file}"),
            _ => "a store URL that is not of the form scheme://host".to_owned(),
        };
    };
    let delimiter = rest.find(['/', '?', '#']);
    // A user name and password end at the first `@`, if it comes before
    // any delimiter; one after it may be a password's or a query's.
    let after = match rest.find('@') {
        Some(at) if delimiter.is_none_or(|delimiter| at < delimiter) => {
            rest.get(at + 1..).unwrap_or_default()
        }
        Some(_) => return format!("{scheme}://…"),
        None => rest,
    };
    // A second `@`: a password's, or a query's after one.
    if after.contains('@') {
        return format!("{scheme}://…");
    }
    let (hosts, path) = after.split_once('/').unwrap_or((after, ""));
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let host = |host: &str| {
        let (name, port) = match host.strip_prefix('[') {
            Some(inner) => inner.split_once(']').map_or(("", None), |(ip, port)| (ip, Some(port))),
            None => host.split_once(':').map_or((host, None), |(name, port)| (name, Some(port))),
        };
        let port = port.map(|port| port.strip_prefix(':').unwrap_or(port));
        !name.is_empty()
            && plain(name, b":")
            && port.is_none_or(|port| port.is_empty() || port.parse::<u16>().is_ok())
    };
    let hosts = hosts.split(['?', '#']).next().unwrap_or_default();
    if hosts.split(',').all(host) && plain(path, b"/") {
        format!("{scheme}://{hosts}/{path}").trim_end_matches('/').to_owned()
    } else {
        format!("{scheme}://…")
    }
}

/// `--now`, or the current time.
fn now_arg(now: Option<&str>) -> Result<OffsetDateTime, Failure> {
    match now {
        Some(text) => OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|err| Failure::Config(format!("--now is not an RFC 3339 time: {err}"))),
        None => Ok(OffsetDateTime::now_utc()),
    }
}

/// What an operator should do next with this keyring.
fn check(file: &Path) -> Result<String, Failure> {
    let keyring = load(file)?;
    let warnings = id_gaps(&keyring);
    for warning in &warnings {
        say!("warning: {warning}");
    }
    if keyring.sealing_periods().len() > 1 || keyring.keys().any(|k| k.retire_at.is_some()) {
        let next = format!(
            "the keyring follows a schedule; see it with: sealed-session keyring plan {}",
            file.display()
        );
        let sealing = keyring.sealing_id_at(OffsetDateTime::now_utc());
        return Ok(json!({
            "ok": true, "primary": sealing, "keys": list(&keyring), "next_step": next, "warnings": warnings
        })
        .to_string());
    }
    let primary = keyring.primary_id();
    let active: Vec<u32> = keyring.keys().filter(|k| k.state == KeyState::Active).map(|k| k.id).collect();
    let newer = active.iter().copied().filter(|&id| id > primary).max();
    let older: Vec<u32> = active.iter().copied().filter(|&id| id < primary).collect();
    let next = if let Some(id) = newer {
        format!(
            "promote key {id} once this keyring (with key {id} active) is on every server: \
             sealed-session keyring promote {} {id}",
            file.display()
        )
    } else if !older.is_empty() {
        format!(
            "retire key(s) {older:?} once the longest session lifetime (the remember-me lifetime if remember-me \
             is on) has passed since key {primary} became primary, or date it now, that lifetime ahead: \
             sealed-session keyring retire {} ID --at +30d (for 30 days)",
            file.display()
        )
    } else {
        format!("nothing to do; to rotate, add a key: sealed-session keyring add {}", file.display())
    };
    Ok(json!({ "ok": true, "primary": primary, "keys": list(&keyring), "next_step": next, "warnings": warnings })
        .to_string())
}

/// [`Keyring::id_gaps`], as messages.
fn id_gaps(keyring: &Keyring) -> Vec<String> {
    let gap = |(before, id)| {
        format!(
            "key {id} follows key {before}: until every server has key {id}, those without it remove its \
             cookies (they take only the next two IDs for a key rollout); give new keys the next ID up"
        )
    };
    keyring.id_gaps().into_iter().map(gap).collect()
}

/// Whether [`write_keyring`] may replace an existing file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Replace {
    /// `keyring init`: fail if the file exists, even if it appears meanwhile.
    Never,
    /// Rotation steps: replace the file read a moment ago.
    Existing,
}

/// Writes a keyring atomically: a new file of mode 0600 beside the target,
/// synced, then renamed over it (or, for a new keyring, linked in place,
/// which fails if the file exists). A replacement keeps the old file's
/// owner and group, so that a change made as root leaves a file the
/// server's user can still read.
fn write_keyring(file: &Path, keyring: &Keyring, replace: Replace) -> Result<(), Failure> {
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
    let dir = dir_of(file);
    let name =
        file.file_name().ok_or_else(|| Failure::Config(format!("{} is not a file name", file.display())))?;
    if replace == Replace::Existing {
        // Under the lock, as every change is (`init` makes a new file).
        remove_leftover_copies(&dir, &name.to_string_lossy());
    }
    let text = keyring.to_toml_string();
    if text.len() > sealed_session::MAX_KEYRING_FILE_LEN {
        return Err(Failure::Config(format!(
            "the keyring would be {} bytes, more than a keyring file may be ({}): remove retired keys first",
            text.len(),
            sealed_session::MAX_KEYRING_FILE_LEN
        )));
    }
    let owner = match replace {
        Replace::Existing => {
            let examine = |err| Failure::Config(format!("cannot examine {}: {err}", file.display()));
            // The rename would replace the link, and leave the file it
            // points to (which servers may read) with the old keys.
            if std::fs::symlink_metadata(file).map_err(examine)?.file_type().is_symlink() {
                return Err(Failure::Config(format!(
                    "{} is a symbolic link: give the path of the keyring file itself, so that the change \
                     reaches every reader of it",
                    file.display()
                )));
            }
            let old = std::fs::metadata(file).map_err(examine)?;
            // Likewise a second name (a hard link): it would keep the old
            // keys, a retired one included.
            if old.nlink() > 1 {
                return Err(Failure::Config(format!(
                    "{} has {} names (hard links): the change would reach this one only, and readers of the \
                     others would keep the old keys; give the keyring file one name",
                    file.display(),
                    old.nlink()
                )));
            }
            // The owner's permission bits too: a keyring made read-only
            // (0400) stays so, and one its owner cannot read (a umask's
            // doing) becomes readable. Group and other bits are never kept,
            // as the file could not have been read with them.
            Some((old.uid(), old.gid(), old.mode() & 0o700 | 0o400))
        }
        Replace::Never => None,
    };
    // A name of its own, even for a process of the same ID in another
    // container sharing the directory.
    let unique = Session::try_new(())?.id().to_hex();
    let temp = dir.join(format!(".{}.{}.{unique}.tmp", name.to_string_lossy(), std::process::id()));
    let written = (|| {
        let mut out = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&temp)?;
        let new = out.metadata()?;
        if let Some((uid, gid, _)) = owner.filter(|&(uid, gid, _)| (uid, gid) != (new.uid(), new.gid())) {
            std::os::unix::fs::fchown(&out, Some(uid), Some(gid)).map_err(|err| {
                std::io::Error::new(
                    err.kind(),
                    format!(
                        "cannot give the new file the old one's owner and group (uid {uid}, gid {gid}): \
                         {err}; run this as root, or as that user while a member of that group"
                    ),
                )
            })?;
        }
        out.write_all(text.as_bytes())?;
        // Set on the open file, whatever the umask took from `0600` at its
        // creation (`0277` would leave it `0400`, `0477` write-only).
        let mode = owner.map_or(0o600, |(_, _, mode)| mode);
        out.set_permissions(std::fs::Permissions::from_mode(mode))?;
        out.sync_all()?;
        match replace {
            Replace::Existing => std::fs::rename(&temp, file),
            // Once linked, the keyring is made: a temporary name left
            // behind is removed under the lock by a later change.
            Replace::Never => std::fs::hard_link(&temp, file).map(|()| {
                if let Err(err) = std::fs::remove_file(&temp) {
                    say!(
                        "warning: cannot remove {}, a second name of the new keyring: {err}",
                        temp.display()
                    );
                }
            }),
        }
    })();
    if let Err(err) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(Failure::Config(match err.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} exists; refusing to overwrite a keyring", file.display())
            }
            _ => format!("cannot write {}: {err}", file.display()),
        }));
    }
    // The file is in place; a failed directory sync only weakens durability
    // against a power cut, so it is reported but is not a failure.
    if let Err(err) = std::fs::File::open(&dir).and_then(|d| d.sync_all()) {
        say!("warning: {} written, but its directory could not be synced: {err}", file.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    /// A file system that takes no locks is named as the cause, not the
    /// lock file (removing it would change nothing). ENOLCK is what NFS
    /// without its lock service answers; no local file system here can be
    /// made to.
    #[test]
    fn a_file_system_without_locks_is_named_as_the_cause() {
        let path = std::path::Path::new("/keys/.keyring.toml.lock");
        let said = |err| match super::lock_refused(path, err) {
            super::Failure::Config(said) => said,
            super::Failure::Refused(said) => panic!("not a configuration failure: {said}"),
        };
        for err in [std::io::Error::from_raw_os_error(libc::ENOLCK), std::io::ErrorKind::Unsupported.into()] {
            let said = said(err);
            assert!(said.contains("takes no locks") && !said.contains("remove it"), "{said}");
        }
        let other = said(std::io::ErrorKind::PermissionDenied.into());
        assert!(other.contains("remove it") && !other.contains("takes no locks"), "{other}");
    }

    /// No password shows, with any of the characters that make a URL
    /// ambiguous left unescaped around it, in any store's URL.
    #[test]
    fn a_store_is_never_shown_with_its_password() {
        let around = ["", "/", "?", "#", "@", ":", "/@", "@/", "?@", "#@", "@@", ":1@", "@x/", "@x?", "/x@"];
        for before in around {
            for after in around {
                let password = format!("{before}s3cret{after}");
                for url in [
                    format!("redis://:{password}@cache:6379/0"),
                    format!("rediss://user:{password}@cache"),
                    format!("redis+sentinel://:{password}@h1:26379,h2:26379/mymaster"),
                    format!("postgres://app:{password}@db/sessions?sslmode=require"),
                    format!("postgres://{password}@db"),
                    format!("postgres://db/sessions?password={password}"),
                ] {
                    let shown = super::shown_store(&url);
                    assert!(!shown.contains("s3cret"), "{url} shown as {shown}");
                }
            }
        }
        assert_eq!(
            super::shown_store("redis+sentinel://:pw@h1:26379,h2:26379/mymaster"),
            "redis+sentinel://h1:26379,h2:26379/mymaster"
        );
    }
}
