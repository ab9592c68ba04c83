//! Flash messages: one-shot notices that survive one redirect.
//!
//! They travel in a small sealed cookie of their own (the session cookie's
//! name with `-flash` appended, sealed under a purpose of its own), so that
//! they work before login, a logout's own ("Signed out") survives it, and
//! a session token can never be read as one or the other way round. A
//! logout or a login takes the unread ones its request brought with the
//! session.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CookieSpec, SealError, Sealer, Session};

use crate::cookie::CookieChange;

/// How long a flash message waits to be read: 10 minutes from when it was
/// added (each its own; adding one never extends the others). A message
/// not shown by then is dropped.
pub const FLASH_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// At most this many messages wait at once; older ones are dropped first.
pub const MAX_FLASHES: usize = 8;

/// How a flash message should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Level {
    /// Something the user may want to know.
    Info,
    /// An action worked ("Signed in as alice").
    Success,
    /// Something the user should look at.
    Warning,
    /// An action failed ("Wrong user name or password").
    Error,
}

impl Level {
    /// The level as a lower-case word (`info`, `success`, `warning`,
    /// `error`), for CSS classes and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Success => "success",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One flash message. Its text is the application's own: escape it when
/// writing it into HTML, like any other text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// How it should look.
    pub level: Level,
    /// What it says.
    pub message: String,
}

/// A message waiting to be read, and when it was added (Unix seconds).
#[derive(Clone, Serialize, Deserialize)]
struct Waiting {
    added: u64,
    flash: Flash,
}

/// How flash messages are sealed: shared by every request.
pub(crate) struct FlashConfig {
    pub(crate) sealer: Sealer,
    pub(crate) cookie: CookieSpec,
}

/// The flash messages of one request, kept with its session state: those it
/// brought (opened only when the handler reads or adds messages), and those
/// added since.
#[derive(Default)]
pub(crate) struct FlashState {
    /// The values of the request's flash cookie, until opened.
    unopened: Vec<Box<str>>,
    /// The messages waiting, each with its own time (the cookie lasts as
    /// long as the newest).
    pending: Vec<Waiting>,
    /// How many of the newest `pending` messages this request added.
    added: usize,
    /// Whether the request carried a flash cookie (to remove once read,
    /// or at a logout or login).
    carried: bool,
    /// Whether the request is a `HEAD` one (whose read removes nothing).
    head: bool,
    change: Option<CookieChange>,
}

impl FlashState {
    /// The request's flash cookie values, opened when first needed. A
    /// `HEAD` request (a link checker's, a prefetch's) that reads them
    /// removes nothing: the page the user then opens still shows them.
    pub(crate) fn new(values: Vec<Box<str>>, head: bool) -> Self {
        Self { carried: !values.is_empty(), head, unopened: values, ..Self::default() }
    }

    /// Opens the request's messages, once: the first value that opens;
    /// then drops those whose time has run out.
    fn open(&mut self, config: &FlashConfig) -> u64 {
        for value in std::mem::take(&mut self.unopened) {
            match config.sealer.open::<Vec<Waiting>>(&value) {
                Ok(opened) => {
                    self.pending = opened.into_session().into_data();
                    break;
                }
                Err(err) => tracing::info!(reason = %err, "flash cookie refused"),
            }
        }
        let now = crate::sealer::opening_time(config.sealer.clock().unix_now());
        self.pending.retain(|waiting| now < waiting.added.saturating_add(FLASH_TIMEOUT.as_secs()));
        now
    }

    /// Adds a message for the next page; the oldest go beyond [`MAX_FLASHES`].
    pub(crate) fn push(&mut self, config: &FlashConfig, flash: Flash) -> Result<(), SealError> {
        let added = self.open(config);
        let mut pending = self.pending.clone();
        pending.push(Waiting { added, flash });
        let excess = pending.len().saturating_sub(MAX_FLASHES);
        pending.drain(..excess);
        self.seal(config, pending)?;
        self.added = self.added.saturating_add(1).min(self.pending.len());
        Ok(())
    }

    /// Makes `pending` the messages waiting, in a new flash cookie.
    fn seal(&mut self, config: &FlashConfig, pending: Vec<Waiting>) -> Result<(), SealError> {
        let (opened, header) = config.sealer.issue_cookie(Session::try_new(pending)?, &config.cookie)?;
        self.pending = opened.into_session().into_data();
        self.change = Some(CookieChange::Set(header));
        Ok(())
    }

    /// Forgets the messages the request brought, unread: they were the
    /// session's that a logout or login just ended, and the next user of
    /// the browser is not to see them. Those the request added stay (a
    /// logout page's "signed out", before or after the logout).
    pub(crate) fn forget_brought(&mut self, config: &FlashConfig) {
        self.unopened.clear();
        let brought = self.pending.len().saturating_sub(self.added);
        self.pending.drain(..brought);
        let kept = std::mem::take(&mut self.pending);
        self.change = self.carried.then_some(CookieChange::Remove);
        if !kept.is_empty() {
            if let Err(err) = self.seal(config, kept) {
                tracing::error!(error = %err, "cannot seal the flash messages the request added");
                self.pending.clear();
                self.added = 0;
            }
        }
    }

    /// The messages not yet read, which are then gone.
    /// (Those of a `HEAD` request stay, as does the cookie of a message it
    /// adds later, which keeps them.)
    pub(crate) fn take(&mut self, config: &FlashConfig) -> Vec<Flash> {
        self.open(config);
        if self.head {
            return self.pending.iter().map(|waiting| waiting.flash.clone()).collect();
        }
        self.change = self.carried.then_some(CookieChange::Remove);
        self.added = 0;
        std::mem::take(&mut self.pending).into_iter().map(|waiting| waiting.flash).collect()
    }

    /// What the response must do with the flash cookie, once.
    pub(crate) fn finish(&mut self) -> Option<CookieChange> {
        self.change.take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use crate::{Keyring, ManualClock};

    /// Each message waits ten minutes from when it was added: a newer one
    /// neither extends an older one nor dies with it.
    #[test]
    fn each_message_waits_its_own_ten_minutes() {
        let clock = ManualClock::at_unix(1_000_000);
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone()).build().unwrap();
        let config = FlashConfig {
            sealer: sealer.derived("f", FLASH_TIMEOUT).unwrap(),
            cookie: CookieSpec::named("f").unwrap(),
        };
        let flash = |message: &str| Flash { level: Level::Info, message: message.into() };
        let value = |state: &mut FlashState| {
            let Some(CookieChange::Set(header)) = state.finish() else { panic!("a flash cookie") };
            header.split(';').next().unwrap().strip_prefix("f=").unwrap().to_owned()
        };

        let mut first = FlashState::default();
        first.push(&config, flash("old")).unwrap();
        let first = value(&mut first);
        clock.advance(Duration::from_secs(9 * 60));
        let mut second = FlashState::new(vec![first.into()], false);
        second.push(&config, flash("new")).unwrap();
        let second = value(&mut second);
        let read = |at: &str| FlashState::new(vec![at.into()], false).take(&config);
        assert_eq!(read(&second), [flash("old"), flash("new")]);
        clock.advance(Duration::from_secs(60));
        assert_eq!(read(&second), [flash("new")], "the old one's ten minutes are up");
        clock.advance(Duration::from_secs(9 * 60 - 1));
        assert_eq!(read(&second), [flash("new")]);
        clock.advance(Duration::from_secs(1));
        assert!(read(&second).is_empty(), "and then the new one's");
    }
}
