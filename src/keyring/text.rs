//! The two text forms of a keyring: the TOML file and the compact
//! environment-variable form. Errors name the entry, never the secret.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use zeroize::Zeroizing;

use super::{KeySpec, KeyState, Keyring};
use crate::error::{EntryRef, KeyringError};
use crate::key::MasterKey;

impl Keyring {
    /// Parses a keyring file's text (TOML):
    ///
    /// ```toml
    /// [[key]]
    /// id = 2
    /// state = "primary"      # or "active", "retired"
    /// secret = "…43 characters of base64url…"
    /// created = 2026-11-27T10:00:00Z   # optional
    ///
    /// [[key]]
    /// id = 3
    /// state = "active"
    /// secret = "…"
    /// activate_at = 2026-12-27T10:00:00Z   # optional: seals from then on
    /// retire_at = 2027-03-27T10:00:00Z     # optional: refused from then on
    /// ```
    ///
    /// See [`Keyring`] for what the schedule means.
    ///
    /// # Errors
    /// A [`KeyringError`] that names the entry and the problem, never the secret.
    pub fn from_toml_str(text: &str) -> Result<Self, KeyringError> {
        let mut table: toml::Table = toml::from_str(text).map_err(|err| KeyringError::Syntax {
            what: "TOML syntax error",
            line: line_of(text, err.span().map_or(0, |s| s.start)),
        })?;
        let top_error = |what| KeyringError::Syntax { what, line: 1 };
        // Whatever is refused is wiped: a secret may be in it.
        let keys = match table.remove("key") {
            Some(toml::Value::Array(keys)) => keys,
            Some(other) => {
                wipe(other);
                wipe(toml::Value::Table(table));
                return Err(top_error("`key` must be an array of tables ([[key]])"));
            }
            None if table.is_empty() => return Err(KeyringError::Empty),
            None => {
                wipe(toml::Value::Table(table));
                return Err(top_error("unknown top-level entry; only [[key]] tables are allowed"));
            }
        };
        if !table.is_empty() {
            wipe(toml::Value::Table(table));
            wipe(toml::Value::Array(keys));
            return Err(top_error("unknown top-level entry; only [[key]] tables are allowed"));
        }
        // Every entry is parsed, so that each secret is taken out and wiped
        // even after an earlier entry's error.
        let parsed: Vec<_> =
            keys.into_iter().enumerate().map(|(i, value)| spec_from_toml(i + 1, value)).collect();
        Self::new(parsed.into_iter().collect::<Result<Vec<_>, _>>()?).inspect(warn_of_id_gaps)
    }

    /// Parses the compact form for environment variables: entries
    /// `ID:STATE:SECRET` separated by commas, for example
    /// `2:primary:…,1:active:…`. An ID is written in decimal digits, with
    /// no sign and no leading zero.
    ///
    /// # Errors
    /// A [`KeyringError`] that names the entry and the problem, never the secret.
    pub fn from_env_value(value: &str) -> Result<Self, KeyringError> {
        let specs = value
            .split(',')
            .enumerate()
            .map(|(i, item)| spec_from_env(i + 1, item.trim()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(specs).inspect(warn_of_id_gaps)
    }

    /// Reads the compact form from the environment variable `name`.
    ///
    /// # Errors
    /// [`KeyringError::Io`] if the variable is unset or not UTF-8, or any
    /// error of [`Keyring::from_env_value`].
    pub fn from_env(name: &str) -> Result<Self, KeyringError> {
        // `VarError::NotUnicode` carries the whole value, secrets and all:
        // never keep it.
        let value = std::env::var(name).map_err(|err| {
            let (kind, what) = match err {
                std::env::VarError::NotPresent => (std::io::ErrorKind::NotFound, "the variable is not set"),
                std::env::VarError::NotUnicode(value) => {
                    drop(Zeroizing::new(value.into_encoded_bytes()));
                    (std::io::ErrorKind::InvalidData, "the variable is not UTF-8")
                }
            };
            KeyringError::Io { path: name.into(), source: std::io::Error::new(kind, what) }
        })?;
        let value = Zeroizing::new(value);
        Self::from_env_value(&value)
    }

    /// The keyring as keyring-file text. The text holds secrets and is wiped
    /// when dropped; write it to a file of mode 0600.
    #[must_use]
    pub fn to_toml_string(&self) -> Zeroizing<String> {
        use std::fmt::Write as _;
        // Sized once: a reallocation would leave an unwiped copy of the
        // secrets written so far.
        let mut out = Zeroizing::new(String::with_capacity(self.keys().count().saturating_mul(ENTRY_TEXT)));
        for spec in self.keys() {
            let _ = writeln!(out, "[[key]]\nid = {}\nstate = \"{}\"", spec.id, spec.state);
            out.push_str("secret = \"");
            out.push_str(&spec.key.to_base64());
            out.push_str("\"\n");
            for (field, time) in
                [("created", spec.created), ("activate_at", spec.activate_at), ("retire_at", spec.retire_at)]
            {
                if let Some(time) = time.and_then(rfc3339) {
                    let _ = writeln!(out, "{field} = {time}");
                }
            }
            out.push('\n');
        }
        out
    }
}

/// Room for one key's entry in [`Keyring::to_toml_string`]: its lines are
/// under 250 bytes.
const ENTRY_TEXT: usize = 320;

/// `time` in RFC 3339, in UTC (an offset with seconds has no RFC 3339
/// form); `None` if it has none (a year past 9999 in UTC).
pub(crate) fn rfc3339(time: OffsetDateTime) -> Option<String> {
    time.checked_to_offset(time::UtcOffset::UTC)?.format(&Rfc3339).ok()
}

fn line_of(text: &str, offset: usize) -> usize {
    let prefix = text.get(..offset).unwrap_or(text);
    prefix.bytes().filter(|&b| b == b'\n').count() + 1
}

/// Entry `index` of a keyring file. Every string of it is wiped when it is
/// dropped, parsed or not: a secret may sit in any field (pasted in the
/// wrong place, or under a misspelt name).
fn spec_from_toml(index: usize, value: toml::Value) -> Result<KeySpec, KeyringError> {
    let mut table = match value {
        toml::Value::Table(table) => table,
        other => {
            wipe(other);
            return Err(KeyringError::Syntax { what: "`key` must be an array of tables ([[key]])", line: 1 });
        }
    };
    let spec = spec_from_table(index, &mut table);
    wipe(toml::Value::Table(table));
    spec
}

fn spec_from_table(index: usize, table: &mut toml::Table) -> Result<KeySpec, KeyringError> {
    let mut entry = EntryRef { index, id: None };
    // Taken out first, into memory wiped on drop, whatever fails below.
    let secret = match table.remove("secret") {
        Some(toml::Value::String(secret)) => Some(Some(Zeroizing::new(secret))),
        Some(other) => {
            wipe(other);
            Some(None)
        }
        None => None,
    };
    let id = match table.get("id") {
        Some(toml::Value::Integer(id)) => u32::try_from(*id).map_err(|_| KeyringError::InvalidField {
            entry,
            field: "id",
            expected: "an integer from 0 to 4294967295",
        })?,
        Some(_) => {
            return Err(KeyringError::InvalidField {
                entry,
                field: "id",
                expected: "an integer from 0 to 4294967295",
            })
        }
        None => return Err(KeyringError::MissingField { entry, field: "id" }),
    };
    entry.id = Some(id);
    let state = match table.get("state") {
        Some(toml::Value::String(state)) => parse_state(entry, state)?,
        Some(_) => return Err(KeyringError::InvalidField { entry, field: "state", expected: "a string" }),
        None => return Err(KeyringError::MissingField { entry, field: "state" }),
    };
    let key = match secret {
        Some(Some(secret)) => {
            MasterKey::from_base64(&secret).map_err(|source| KeyringError::Key { entry, source })?
        }
        Some(None) => {
            return Err(KeyringError::InvalidField { entry, field: "secret", expected: "a base64url string" })
        }
        None => return Err(KeyringError::MissingField { entry, field: "secret" }),
    };
    let created = time_field(entry, table, "created")?;
    let activate_at = time_field(entry, table, "activate_at")?;
    let retire_at = time_field(entry, table, "retire_at")?;
    let known = ["id", "state", "created", "activate_at", "retire_at"];
    if let Some(field) = table.keys().find(|field| !known.contains(&field.as_str())) {
        // A secret pasted as a name is a bare key too: echo only what looks
        // like a misspelt field name.
        let looks_like_a_name =
            field.len() <= 16 && field.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
        let field = if looks_like_a_name { field.clone() } else { "(not shown)".to_owned() };
        return Err(KeyringError::UnknownField { entry, field });
    }
    Ok(KeySpec { id, state, key, created, activate_at, retire_at })
}

/// Drops `value`, wiping every string in it (names of tables included).
fn wipe(value: toml::Value) {
    match value {
        toml::Value::String(text) => drop(Zeroizing::new(text)),
        toml::Value::Array(values) => values.into_iter().for_each(wipe),
        toml::Value::Table(table) => table.into_iter().for_each(|(name, value)| {
            drop(Zeroizing::new(name));
            wipe(value);
        }),
        _ => {}
    }
}

/// The optional date-time `field` of an entry.
fn time_field(
    entry: EntryRef,
    table: &toml::Table,
    field: &'static str,
) -> Result<Option<OffsetDateTime>, KeyringError> {
    const EXPECTED: &str = "an RFC 3339 date-time with an offset, like 2026-11-27T10:00:00Z";
    let invalid = KeyringError::InvalidField { entry, field, expected: EXPECTED };
    match table.get(field) {
        Some(toml::Value::Datetime(dt)) => {
            OffsetDateTime::parse(&dt.to_string(), &Rfc3339).map(Some).map_err(|_| invalid)
        }
        Some(_) => Err(invalid),
        None => Ok(None),
    }
}

fn parse_state(entry: EntryRef, state: &str) -> Result<KeyState, KeyringError> {
    state.parse().map_err(|_| {
        // A misplaced secret can land in the state field: echo only what
        // looks like a misspelt state word.
        let looks_like_a_word = state.len() <= 10 && state.bytes().all(|b| b.is_ascii_alphabetic());
        let state = if looks_like_a_word { state.to_owned() } else { "(not shown)".to_owned() };
        KeyringError::UnknownState { entry, state }
    })
}

/// A key ID of the environment form: decimal digits without a sign or a
/// leading zero (`0` aside), so that one ID has one spelling.
fn env_id(text: &str) -> Option<u32> {
    let canonical = text.bytes().all(|b| b.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn spec_from_env(index: usize, item: &str) -> Result<KeySpec, KeyringError> {
    let mut entry = EntryRef { index, id: None };
    let mut fields = item.split(':');
    let id = match fields.next() {
        None | Some("") => return Err(KeyringError::MissingField { entry, field: "id" }),
        Some(id) => env_id(id).ok_or(KeyringError::InvalidField {
            entry,
            field: "id",
            expected: "an integer from 0 to 4294967295, in digits without a sign or a leading zero",
        })?,
    };
    entry.id = Some(id);
    let state = match fields.next() {
        None | Some("") => return Err(KeyringError::MissingField { entry, field: "state" }),
        Some(state) => parse_state(entry, state)?,
    };
    let key = match fields.next() {
        None | Some("") => return Err(KeyringError::MissingField { entry, field: "secret" }),
        Some(secret) => {
            MasterKey::from_base64(secret).map_err(|source| KeyringError::Key { entry, source })?
        }
    };
    if fields.next().is_some() {
        return Err(KeyringError::InvalidField {
            entry,
            field: "secret",
            expected: "the last of three fields ID:STATE:SECRET",
        });
    }
    Ok(KeySpec::new(id, state, key))
}

/// Warns of each gap of [`Keyring::id_gaps`].
fn warn_of_id_gaps(keyring: &Keyring) {
    for (before, id) in keyring.id_gaps() {
        tracing::warn!(
            key = id,
            before,
            "keyring: key {id} follows key {before}: until every server has key {id}, those without it \
             remove its cookies (only the next {} IDs are taken for a rollout); give new keys the next ID up",
            super::LATER_KEY_IDS
        );
    }
}
